# shellcheck shell=bash disable=SC2034 # sourced: its variables are its callers'
# Sourced by hack/demo.sh and hack/e2e.sh: the cluster they work on and the operator's image.
# Sets root, KUBE_ASSETS, KUBECTL, cluster (the local cluster's folder) and image; use_cluster
# then chooses the cluster and exports its KUBECONFIG.
# Env: USE_EXISTING_CLUSTER=true  the cluster of $KUBECONFIG (kind, ...) instead of the local one
#      LOCAL_CLUSTER  the local cluster's folder (default .local-cluster of the repository)
#      KUBE_ASSETS, IMG (default kinto-operator:dev)

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export KUBE_ASSETS=${KUBE_ASSETS:-$root/bin/k8s/v1.36.5}
export KUBECTL=$KUBE_ASSETS/kubectl
cluster=${LOCAL_CLUSTER:-$root/.local-cluster}
image=${IMG:-kinto-operator:dev}
# 1 once use_cluster started the local cluster (rather than finding it running).
started_cluster=

# use_cluster SAY: the cluster of $KUBECONFIG when USE_EXISTING_CLUSTER=true; otherwise the local
# cluster, reused (its images imported again, for a rebuilt operator) when it runs, else started.
# SAY is the command that tells the user which.
use_cluster() {
  local say=$1
  if [ "${USE_EXISTING_CLUSTER:-}" = true ]; then
    [ -n "${KUBECONFIG:-}" ] || { echo "USE_EXISTING_CLUSTER=true needs KUBECONFIG" >&2; exit 1; }
    "$say" "Using the cluster of KUBECONFIG=$KUBECONFIG"
    return
  fi
  if "$root/hack/local-cluster.sh" status "$cluster" >/dev/null 2>&1; then
    "$say" "Using the local cluster already running in ${cluster#"$root"/} (it stays up)"
    "$root/hack/local-cluster.sh" images "$cluster"
  else
    "$say" "Starting a local single-node cluster in ${cluster#"$root"/}, in namespaces of its own:" \
      "etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd, kubelet and" \
      "kube-proxy, then CoreDNS, a volume provisioner and a NetworkPolicy enforcer in it"
    started_cluster=1
    "$root/hack/local-cluster.sh" up "$cluster"
  fi
  export KUBECONFIG=$cluster/kubeconfig
  # Outside the cluster, for the operator's network policies, is everything but the local
  # cluster's own ranges: the node's address (where the e2e tests' object storage listens) too.
  OPERATOR_ARGS="--cluster-cidrs=$("$root/hack/local-cluster.sh" cidrs "$cluster")"
  export OPERATOR_ARGS
}
