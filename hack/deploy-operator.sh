#!/usr/bin/env bash
# Deploys the operator as users do (`make deploy`): the CRDs, then config/default (RBAC, the
# operator's Deployment in kinto-operator-system) with the given image, and waits until the
# operator runs. A Deployment already there is restarted, so that an image rebuilt under the same
# tag is the one that runs. With DEPLOY_WITH=chart, the same objects come from the Helm chart
# (charts/kinto-operator, release kinto-operator); do not switch one cluster between the two.
#
# Usage: hack/deploy-operator.sh IMAGE   (against the cluster of $KUBECONFIG)
# Env:   KUBECTL (default kubectl on PATH)
#        OPERATOR_ARGS  flags added to the manager's, space-separated (such as the local
#                       cluster's --cluster-cidrs)
#        DEPLOY_WITH    kustomize (default) or chart
#        HELM           the Helm CLI, for DEPLOY_WITH=chart (default helm on PATH)
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 IMAGE" >&2; exit 2; }
image=$1
root=$(cd "$(dirname "$0")/.." && pwd)
kubectl=${KUBECTL:-kubectl}
namespace=kinto-operator-system
deployment=deployment/kinto-operator-controller-manager

existed=
"$kubectl" -n "$namespace" get "$deployment" >/dev/null 2>&1 && existed=1

case ${DEPLOY_WITH:-kustomize} in
kustomize)
  # Each extra flag goes after --leader-elect, the first of the manager's.
  extra=
  for arg in ${OPERATOR_ARGS:-}; do extra+="\\n        - $arg"; done
  "$kubectl" kustomize "$root/config/default" |
    sed -e "s|controller:latest|$image|g" -e "s|^        - --leader-elect\$|&$extra|" |
    "$kubectl" apply --server-side --force-conflicts -f -
  ;;
chart)
  # The chart leaves the namespace, labelled as config/manager labels it, and the CRDs, which
  # Helm installs only once and never upgrades, to the installer.
  "$kubectl" create namespace "$namespace" --dry-run=client -o yaml | "$kubectl" apply --server-side -f -
  "$kubectl" label --overwrite namespace "$namespace" app.kubernetes.io/name=kinto-operator pod-security.kubernetes.io/enforce=restricted
  "$kubectl" apply --server-side --force-conflicts -f "$root/charts/kinto-operator/crds/"
  args=(--set-string "image=$image")
  i=0
  # Helm splits values at commas unless escaped.
  for arg in ${OPERATOR_ARGS:-}; do args+=(--set-string "extraArgs[$i]=${arg//,/\\,}"); i=$((i + 1)); done
  "${HELM:-helm}" upgrade --install kinto-operator "$root/charts/kinto-operator" --namespace "$namespace" --skip-crds "${args[@]}"
  ;;
*)
  echo "deploy-operator: DEPLOY_WITH is kustomize or chart, not $DEPLOY_WITH" >&2
  exit 2
  ;;
esac
if [ -n "$existed" ]; then
  "$kubectl" -n "$namespace" rollout restart "$deployment"
fi
"$kubectl" wait --for condition=Established --timeout=60s crd/kintoinstances.hosting.kinto-storage.org crd/kintobackups.hosting.kinto-storage.org \
  crd/kintohostingclasses.hosting.kinto-storage.org crd/kintoreleasecatalogs.hosting.kinto-storage.org
if ! "$kubectl" -n "$namespace" rollout status "$deployment" --timeout=180s; then
  echo "deploy-operator: the operator did not become ready; its pods and log:" >&2
  "$kubectl" -n "$namespace" get pods -o wide >&2 || true
  "$kubectl" -n "$namespace" logs "$deployment" --tail=30 >&2 || true
  exit 1
fi
