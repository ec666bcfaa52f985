#!/usr/bin/env bash
# Provides the helm binary the chart tests run (e2e/install), in this order:
#   1. $HELM, when set: that binary, whatever its version (your choice, your results);
#   2. $1 (default bin/helm/<version>/helm) when already built: a warm run costs nothing;
#   3. otherwise built from the Go module proxy at the pinned version, in a throw-away module
#      under bin/src/helm, so helm's Kubernetes libraries never enter this project's go.mod.
# A helm on PATH is not used: its version would decide what the tests see.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"

root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/bin/helm/$HELM_VERSION/helm}"

if [ -n "${HELM:-}" ]; then
  if [ -x "$HELM" ]; then echo "helm from \$HELM: $HELM"; exit 0; fi
  echo "HELM=$HELM is not an executable file" >&2
  exit 1
fi
if [ -x "$out" ]; then echo "helm $HELM_VERSION present"; exit 0; fi

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off
mod="$root/bin/src/helm"
mkdir -p "$mod" "$(dirname "$out")"
if ! grep -Eqs "helm\.sh/helm/v3 $HELM_VERSION( |$)" "$mod/go.mod"; then
  rm -f "$mod/go.mod" "$mod/go.sum"
  (cd "$mod" && go mod init build.local/helm >/dev/null 2>&1 && go get "helm.sh/helm/v3@$HELM_VERSION" >/dev/null)
fi
# The version stamps helm's own Makefile sets: helm version, and the Kubernetes version that
# helm template and helm lint assume without a cluster (from the client-go helm is built with).
client_go="$(cd "$mod" && go list -m -f '{{.Version}}' k8s.io/client-go)" # v0.MINOR.PATCH
k8s_minor="$(echo "$client_go" | cut -d. -f2)"
pkg=helm.sh/helm/v3
ldflags="-s -w -X $pkg/internal/version.version=$HELM_VERSION -X $pkg/internal/version.metadata= -X $pkg/internal/version.gitTreeState=clean"
for p in pkg/chartutil pkg/lint/rules; do
  ldflags="$ldflags -X $pkg/$p.k8sVersionMajor=1 -X $pkg/$p.k8sVersionMinor=$k8s_minor"
done
echo "building helm $HELM_VERSION (a few minutes when cold)"
(cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg/cmd/helm")
mv "$out.tmp" "$out"
echo "helm $HELM_VERSION built in $out"
