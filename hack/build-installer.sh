#!/usr/bin/env bash
# Writes the operator's install bundles, each one `kubectl apply --server-side -f` away:
#   install.yaml             what `make deploy` applies (config/default): the CRDs, the
#                            operator's namespace, RBAC, Deployment and metrics Service
#   install-namespaced.yaml  the same operator hosting only namespace kinto-tenants, with a Role
#                            there in place of the ClusterRole (config/namespaced)
#   install-monitoring.yaml  install.yaml with the Prometheus operator's ServiceMonitor and
#                            alerts, and the Grafana dashboard (config/default-monitoring)
# with the operator's image set to IMAGE.
#
# Usage: hack/build-installer.sh OUT_DIR IMAGE
# Env:   KUBECTL (default kubectl on PATH; its kustomize renders config/)
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 OUT_DIR IMAGE" >&2; exit 2; }
out=$1
image=$2
root=$(cd "$(dirname "$0")/.." && pwd)
kubectl=${KUBECTL:-kubectl}

mkdir -p "$out"
for variant in default:install namespaced:install-namespaced default-monitoring:install-monitoring; do
  # The Deployment names the image twice (its container and OPERATOR_IMAGE), as controller:latest.
  "$kubectl" kustomize "$root/config/${variant%%:*}" | sed -e "s|controller:latest|$image|g" >"$out/${variant##*:}.yaml"
done
