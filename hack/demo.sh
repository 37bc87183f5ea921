#!/usr/bin/env bash
# The `make demo` walk-through: brings up the local single-node cluster (hack/local-cluster.sh),
# deploys the operator in it as users do, applies the smallest sample, waits until Kinto answers,
# makes real requests to it, then backs it up (KintoBackup) and restores the backup into a second
# instance (spec.bootstrap). The cluster is left running to play with; the end of the output
# says how to reach the instance and how to tear everything down.
#
# Usage: hack/demo.sh   (after `make kube-binaries build images`)
# Env:   USE_EXISTING_CLUSTER=true  use the cluster of $KUBECONFIG (e.g. kind) instead; its nodes
#                                   need the operator's image (see the README)
#        LOCAL_CLUSTER, KUBE_ASSETS, IMG (default kinto-operator:dev)
set -euo pipefail

# shellcheck source=hack/cluster-lib.sh
. "$(dirname "$0")/cluster-lib.sh"
cd "$root"
namespace=kinto-demo
sample=config/samples/hosting_v1alpha1_kintoinstance.yaml
ready_timeout=300s
forward_pid=

# Headings in bold on a terminal only, so that a CI log stays free of escape codes.
if [ -t 1 ]; then
  bold=$'\e[1m' plain=$'\e[0m'
else
  bold='' plain=''
fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
note() { printf '    %s\n' "$@"; }
die() {
  echo "demo: $*" >&2
  exit 1
}
kubectl() { "$KUBECTL" "$@"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -z "$forward_pid" ] || kill "$forward_pid" 2>/dev/null || true
  if [ "$rc" != 0 ]; then
    step "Demo FAILED (exit code $rc)"
    [ -z "${KUBECONFIG:-}" ] || note "The cluster is left as it is, to look at: export KUBECONFIG=$KUBECONFIG"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start=$SECONDS

use_cluster step
kubectl get nodes -o wide

step "Deploying the operator ($image) with its CRD and RBAC, as \`make deploy\` does"
hack/deploy-operator.sh "$image"

step "Applying $sample in namespace $namespace"
kubectl create namespace "$namespace" --dry-run=client -o yaml |
  kubectl label --local -f - -o yaml pod-security.kubernetes.io/enforce=restricted |
  kubectl apply -f -
sed -n '/^apiVersion/,$p' "$sample"
kubectl apply -n "$namespace" -f "$sample"
name=$(kubectl create --dry-run=client -o jsonpath='{.metadata.name}' -f "$sample")
service=service/$name-server

step "Waiting (up to $ready_timeout) until the instance is Ready"
note "The operator generates credentials, starts PostgreSQL on a new volume, runs the schema" \
  "migration Job, then the Kinto server."
if ! kubectl -n "$namespace" wait --for condition=Ready --timeout "$ready_timeout" "kintoinstance/$name"; then
  kubectl -n "$namespace" describe "kintoinstance/$name" >&2
  die "the instance did not become Ready; its conditions and events are above"
fi
kubectl get kintoinstances -A -o wide
kubectl -n "$namespace" get statefulsets,deployments,jobs,pods,services,persistentvolumeclaims,networkpolicies

step "Talking to Kinto through its Service"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# kubectl itself, not the function wrapping it: $! must be the port-forward's PID, which the
# demo kills when it is done (killing a function's subshell leaves its kubectl running).
"$KUBECTL" -n "$namespace" port-forward "$service" "$port:80" >/dev/null 2>&1 &
forward_pid=$!
base=http://127.0.0.1:$port/v1
for _ in $(seq 50); do
  curl -fsS "$base/__heartbeat__" >/dev/null 2>&1 && break
  sleep 0.2
done
# show ARGS...: prints the curl command, then Kinto's answer; an error status ends the demo.
show() {
  printf '\n$ curl'
  printf ' %q' "$@"
  printf '\n'
  curl -sS --fail-with-body "$@" || die "Kinto answered with an error"
  echo
}
show "$base/"
show "$base/__heartbeat__"
show -X PUT -H 'Content-Type: application/json' -d '{"data": {"password": "s3cret-demo-password"}}' "$base/accounts/demo"
show -u demo:s3cret-demo-password -X PUT -H 'Content-Type: application/json' -d '{"data": {"title": "Notes"}}' "$base/buckets/notes"
show -u demo:s3cret-demo-password -X PUT -H 'Content-Type: application/json' -d '{"data": {}}' "$base/buckets/notes/collections/todo"
show -u demo:s3cret-demo-password -X POST -H 'Content-Type: application/json' -d '{"data": {"text": "Hello from the demo"}}' "$base/buckets/notes/collections/todo/records"
show -u demo:s3cret-demo-password "$base/buckets/notes/collections/todo/records"
kill "$forward_pid" 2>/dev/null || true
wait "$forward_pid" 2>/dev/null || true
forward_pid=

step "The record, in the instance's PostgreSQL"
kubectl -n "$namespace" exec "statefulset/$name-postgres" -c postgres -- \
  psql -X -d kinto -c "SELECT parent_id, id, data FROM objects WHERE resource_name = 'record'"

step "Backing the instance up, and restoring the backup into a new instance"
note "spec.backup gives the instance a nightly CronJob and a backup volume; a KintoBackup takes" \
  "one now. The copy starts from it (spec.bootstrap) before its schema migration and server."
kubectl -n "$namespace" patch "kintoinstance/$name" --type merge -p '{"spec": {"backup": {}}}'
kubectl -n "$namespace" apply -f - <<YAML
apiVersion: hosting.kinto-storage.org/v1alpha1
kind: KintoBackup
metadata: {name: $name-demo}
spec: {instance: $name}
YAML
if ! kubectl -n "$namespace" wait --for jsonpath='{.status.phase}'=Completed --timeout "$ready_timeout" "kintobackup/$name-demo"; then
  kubectl -n "$namespace" get "kintobackup/$name-demo" -o yaml >&2
  die "the backup did not complete; its status is above"
fi
kubectl -n "$namespace" get kintobackups -o wide
kubectl -n "$namespace" apply -f - <<YAML
apiVersion: hosting.kinto-storage.org/v1alpha1
kind: KintoInstance
metadata: {name: $name-copy}
spec:
  bootstrap: {fromBackup: {backupName: $name-demo}}
YAML
if ! kubectl -n "$namespace" wait --for condition=Ready --timeout "$ready_timeout" "kintoinstance/$name-copy"; then
  kubectl -n "$namespace" describe "kintoinstance/$name-copy" >&2
  die "the restored instance did not become Ready; its conditions and events are above"
fi
kubectl get kintoinstances -n "$namespace"
kubectl -n "$namespace" exec "statefulset/$name-copy-postgres" -c postgres -- \
  psql -X -d kinto -c "SELECT parent_id, id, data FROM objects WHERE resource_name = 'record'"

step "Demo finished in $((SECONDS - start)) s: Kinto answers, its data in PostgreSQL, backed up and restored"
note "The cluster keeps running. To use it:" \
  "  export KUBECONFIG=$KUBECONFIG" \
  "  $KUBECTL -n $namespace port-forward $service 8888:80   # then http://127.0.0.1:8888/v1/" \
  "  $KUBECTL -n $namespace describe kintoinstance $name"
if [ "${USE_EXISTING_CLUSTER:-}" = true ]; then
  note "To remove the demo: kubectl delete namespace $namespace && make undeploy"
else
  note "From the node's network, the Service is also reachable directly:" \
    "  hack/local-cluster.sh exec ${cluster#"$root"/} curl http://$(kubectl -n "$namespace" get "$service" -o jsonpath='{.spec.clusterIP}')/v1/" \
    "To tear everything down (the cluster, its volumes and every process): make cluster-down"
fi
