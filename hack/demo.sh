#!/usr/bin/env bash
# The `make demo` walk-through: starts a throwaway local control plane, installs the CRDs, runs
# the operator (bin/manager) on config/samples, shows what it created, then stops everything.
#
# Usage: hack/demo.sh   (after `make kube-binaries build`)
# Env:   KUBE_ASSETS (default bin/k8s/v1.36.5 of the repository)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# A relative KUBE_ASSETS is relative to where the script was started: made absolute before the cd.
case ${KUBE_ASSETS:=$root/bin/k8s/v1.36.5} in
/*) ;;
*) KUBE_ASSETS=$PWD/$KUBE_ASSETS ;;
esac
export KUBE_ASSETS
cd "$root"
demo=$root/.demo
cluster=$demo/cluster
manager_log=$demo/manager.log
reconcile_timeout=30
# Byte order for the sample files, whatever the locale: the minimal sample comes first.
LC_ALL=C

manager_pid=
cluster_up=

# Headings in bold on a terminal only, so that a CI log stays free of escape codes.
if [ -t 1 ]; then
  bold=$'\e[1m' plain=$'\e[0m'
else
  bold='' plain=''
fi

step() {
  printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"
}

note() {
  printf '    %s\n' "$@"
}

die() {
  echo "demo: $*" >&2
  exit 1
}

kubectl() {
  "$KUBE_ASSETS/kubectl" --kubeconfig "$cluster/kubeconfig" "$@"
}

# Stops the operator, then the cluster, whatever way the script ends.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  step "Stopping"
  if [ -n "$manager_pid" ] && kill -0 "$manager_pid" 2>/dev/null; then
    kill -TERM "$manager_pid"
    for _ in {1..50}; do
      kill -0 "$manager_pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$manager_pid" 2>/dev/null; then
      echo "demo: the operator ignored SIGTERM for 10 s, killing it" >&2
      kill -KILL "$manager_pid" 2>/dev/null || true
    fi
    wait "$manager_pid" 2>/dev/null || true
    echo "operator stopped (its log: ${manager_log#"$root"/})"
  fi
  if [ -n "$cluster_up" ]; then
    hack/local-cluster.sh down "$cluster" || rc=1
  fi
  case $rc in
  0) step "Demo finished" ;;
  130 | 143) step "Demo interrupted" ;;
  *) step "Demo FAILED (exit code $rc)" ;;
  esac
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ -x bin/manager ] || die "bin/manager is missing: build the operator with 'make build'"
mkdir -p "$demo"

step "Starting a local control plane in ${cluster#"$root"/}"
note "etcd, kube-apiserver, kube-controller-manager and kube-scheduler on 127.0.0.1; no node."
# A failed `up` stops what it started itself (and a running cluster there is never ours to stop).
hack/local-cluster.sh up "$cluster"
cluster_up=1

step "Installing the KintoInstance CRD"
kubectl apply --server-side -f config/crd/bases
# kubectl wait fails at once, rather than waiting, while the new CRD has no conditions yet.
for _ in $(seq 60); do
  kubectl wait --for condition=Established --timeout=30s -f config/crd/bases >/dev/null 2>&1 && break
  sleep 0.5
done
kubectl wait --for condition=Established --timeout=1s -f config/crd/bases

step "Starting the operator (log: ${manager_log#"$root"/})"
# No metrics endpoint, and the health probes on a free port of 127.0.0.1: the defaults would
# listen on fixed ports of every address.
bin/manager --kubeconfig "$cluster/kubeconfig" --leader-elect=false \
  --metrics-bind-address=0 --health-probe-bind-address=127.0.0.1:0 >"$manager_log" 2>&1 &
manager_pid=$!
note "pid $manager_pid"

step "Applying the samples of config/samples"
# Every manifest but a kustomization.yaml, which is not a Kubernetes object.
shopt -s nullglob
files=()
for f in config/samples/*.yaml; do
  [ "${f##*/}" = kustomization.yaml ] || files+=(-f "$f")
done
((${#files[@]})) || die "no sample manifest in config/samples"
applied=$(kubectl apply "${files[@]}" -o name)
mapfile -t lines <<<"$applied"
note "${lines[@]}"
first=$(grep -m1 '^kintoinstance' <<<"$applied") || die "no KintoInstance in config/samples"

step "Waiting up to $reconcile_timeout s for the operator to reconcile every instance"
# An instance is reconciled when its status describes its current spec.
reconciled=
started=$SECONDS
deadline=$((started + reconcile_timeout))
while ((SECONDS < deadline)); do
  kill -0 "$manager_pid" 2>/dev/null || {
    tail -n 30 "$manager_log" >&2
    die "the operator exited; the end of its log is above"
  }
  generations=$(kubectl get kintoinstances -A \
    -o jsonpath='{range .items[*]}{.metadata.generation}={.status.observedGeneration}{"\n"}{end}')
  if [ -n "$generations" ] && ! grep -qvE '^([0-9]+)=\1$' <<<"$generations"; then
    reconciled=1
    break
  fi
  sleep 1
done
if [ -n "$reconciled" ]; then
  note "done in $((SECONDS - started)) s"
else
  echo "demo: not every instance was reconciled within $reconcile_timeout s; the end of the operator's log:" >&2
  tail -n 30 "$manager_log" >&2
fi

step "The instances"
kubectl get kintoinstances -A -o wide

step "What the operator created (label app.kubernetes.io/managed-by=kinto-operator)"
kubectl get statefulsets,deployments,services,configmaps,secrets,persistentvolumeclaims,jobs,ingresses,networkpolicies,serviceaccounts,poddisruptionbudgets,pods \
  -A -l app.kubernetes.io/managed-by=kinto-operator

step "Conditions and events of the first sample, ${first#*/}"
kubectl describe "$first"

step "Why nothing becomes Ready here"
note "This control plane has no kubelet, hence no node: the scheduler cannot place any pod, so" \
  "the pods above stay Pending, and with no storage provisioner the volume claims stay Pending" \
  "too. No managed PostgreSQL starts, no schema migration Job completes, and the Kinto servers" \
  "wait for them: Ready stays False, and the conditions above say which step each instance is at." \
  "Seeing Kinto serve requests takes a cluster with a real node (the end-to-end tests)."

[ -n "$reconciled" ] || exit 1
