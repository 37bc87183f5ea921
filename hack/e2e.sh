#!/usr/bin/env bash
# Runs the end-to-end tests (test/e2e) on a real cluster, with the operator deployed in-cluster
# from its image and RBAC as users deploy it: from the Helm chart (charts/kinto-operator), the
# bundle's path being `make demo`'s and test/install's. The upgrade test moves that release to
# the previous build (PREVIOUS_IMG) and back. By default the cluster is the local one of
# hack/local-cluster.sh: started here and stopped at the end, or reused, and left running, when
# `make demo` or `make cluster-up` already started it.
#
# Usage: hack/e2e.sh [go test flags...]
#        (after `make kube-binaries build images previous-operator-image s3-server`)
# Env:   USE_EXISTING_CLUSTER=true  use the cluster of $KUBECONFIG instead (its nodes must have
#                                   the images, and this host must reach its Service IPs)
#        LOCAL_CLUSTER   the local cluster's folder (default .local-cluster of the repository)
#        KUBE_ASSETS, IMG (default kinto-operator:dev), E2E_ARTIFACTS (default .e2e-artifacts)
#        PREVIOUS_IMG    the operator built under another version string (default
#                        kinto-operator:e2e-previous, `make previous-operator-image`)
#        HELM            the Helm CLI (default bin/helm-v4.3.2, `go install`ed by the Makefile)
#        VERSITYGW_BIN   versitygw (`make s3-server`): the S3 backup test starts it on the local
#                        cluster's node address, which pods reach
# On the local cluster the tests run in the node's network namespace (hack/local-cluster.sh exec),
# where they reach Service and pod IPs, as the node's root, like kubelet's probes.
#        E2E_CRASH=1     also run the crash test (make test-crash), which kills the operator
#        E2E_S3_ENDPOINT, E2E_S3_BUCKET, E2E_S3_ACCESS_KEY_ID, E2E_S3_SECRET_ACCESS_KEY
#                        (E2E_S3_REGION): a bucket that this host and the pods both reach, for the
#                        S3 backup test, which is skipped without one when USE_EXISTING_CLUSTER=true;
#                        the endpoint is host:port for TLS, http://host:port for plain http
set -euo pipefail

# shellcheck source=hack/cluster-lib.sh
. "$(dirname "$0")/cluster-lib.sh"
cd "$root"
export E2E_ARTIFACTS=${E2E_ARTIFACTS:-$root/.e2e-artifacts}
export HELM=${HELM:-$root/bin/helm-v4.3.2} DEPLOY_WITH=chart
export E2E_OPERATOR_IMAGE=$image E2E_PREVIOUS_OPERATOR_IMAGE=${PREVIOUS_IMG:-kinto-operator:e2e-previous}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$rc" != 0 ] && [ -n "${KUBECONFIG:-}" ]; then
    echo "e2e: FAILED; the operator's pods and the end of its log:" >&2
    "$KUBECTL" -n kinto-operator-system get pods -o wide >&2 || true
    "$KUBECTL" -n kinto-operator-system logs deployment/kinto-operator-controller-manager --tail=40 >&2 || true
    echo "e2e: what the failed tests left is in ${E2E_ARTIFACTS}" >&2
  fi
  if [ -n "$started_cluster" ]; then
    hack/local-cluster.sh down "$cluster" || rc=1
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { echo "e2e: $*"; }
use_cluster say

rm -rf "$E2E_ARTIFACTS"
mkdir -p "$E2E_ARTIFACTS"
hack/deploy-operator.sh "$image"
in_node=()
[ "${USE_EXISTING_CLUSTER:-}" = true ] || in_node=(-exec "$root/hack/local-cluster.sh exec $cluster")
go test -tags e2e -count=1 -v -timeout 40m "${in_node[@]}" ./test/e2e/... "$@"

# A reconcile error must become a condition and an event, never a crash: the operator must not
# have restarted during the tests (but for the crash test's kills).
if [ "${E2E_CRASH:-}" = 1 ]; then
  echo "e2e: the crash test killed the operator on purpose: restarts not checked"
  exit 0
fi
restarts=$("$KUBECTL" -n kinto-operator-system get pods -l app.kubernetes.io/name=kinto-operator \
  -o jsonpath='{range .items[*]}{range .status.containerStatuses[*]}{.restartCount}{"\n"}{end}{end}')
if grep -qv '^0$' <<<"$restarts"; then
  echo "e2e: the operator restarted during the tests (restart counts: $(tr "\n" " " <<<"$restarts"))" >&2
  exit 1
fi
echo "e2e: the operator ran without a restart"
