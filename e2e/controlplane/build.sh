#!/usr/bin/env bash
# Provides the control-plane binaries the e2e tests run (kube-apiserver, etcd, kube-scheduler,
# kube-controller-manager, kwok) in $1 (default bin/k8s/<version>), in this order:
#   1. a binary already in $KUBEBUILDER_ASSETS or in $1 is used as it is (a warm run costs nothing);
#   2. kube-apiserver and etcd: the usual envtest download (setup-envtest), when it can reach
#      its release index;
#   3. otherwise each binary is built from the Go module proxy at a pinned version.
# envtest's tarballs carry no scheduler, controller manager or kwok, so those are always built.
set -euo pipefail

KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"

root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/bin/k8s/$KUBERNETES_VERSION}"
src="$root/bin/src"
mkdir -p "$out" "$src"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off

have() { [ -x "$out/$1" ] || { [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/$1" ]; }; }
want=(kube-apiserver kube-scheduler kube-controller-manager etcd kwok)
missing=0
for b in "${want[@]}"; do have "$b" || missing=1; done
if [ "$missing" = 0 ] && [ -d "$out/kwok-stages" ]; then echo "control plane $KUBERNETES_VERSION present"; exit 0; fi

if ! have kube-apiserver || ! have etcd; then
  envtest_dir="$root/bin/envtest"
  if assets="$(timeout 120 go run sigs.k8s.io/controller-runtime/tools/setup-envtest@v0.24.1 use "${KUBERNETES_VERSION#v}" --bin-dir "$envtest_dir" -p path 2>/dev/null)" && [ -x "$assets/kube-apiserver" ]; then
    cp -f "$assets/kube-apiserver" "$assets/etcd" "$out/"
    echo "kube-apiserver and etcd from the envtest download"
  else
    echo "envtest download unavailable; building from the Go module proxy"
  fi
fi

# Kubernetes: k8s.io/kubernetes replaces its staging modules with ./staging paths, which a
# consumer cannot use; replace each with its published v0.x twin instead.
staging_version="v0.${KUBERNETES_VERSION#v1.}"
k8s_mod="$src/kubernetes"
mkdir -p "$k8s_mod"
if { ! have kube-apiserver || ! have kube-scheduler || ! have kube-controller-manager; } && [ ! -f "$k8s_mod/go.mod" ]; then
  gomod="$(cd "$k8s_mod" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  {
    echo "module controlplane.local/kubernetes"
    echo
    grep -E '^go [0-9]' "$gomod"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$gomod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } >"$k8s_mod/go.mod.tmp"
  mv "$k8s_mod/go.mod.tmp" "$k8s_mod/go.mod"
  cat >"$k8s_mod/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
  (cd "$k8s_mod" && go mod tidy -e >/dev/null 2>&1 || true)
fi
for b in kube-apiserver kube-scheduler kube-controller-manager; do
  have "$b" && continue
  echo "building $b $KUBERNETES_VERSION (minutes when cold)"
  (cd "$k8s_mod" && go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${KUBERNETES_VERSION#v1.}" -o "$out/$b.tmp" "k8s.io/kubernetes/cmd/$b")
  mv "$out/$b.tmp" "$out/$b"
done

# etcd: the server module's etcdmain is the real etcd entry point; its sibling modules must
# move in lock-step with it.
if ! have etcd; then
  etcd_mod="$src/etcd"
  mkdir -p "$etcd_mod"
  cat >"$etcd_mod/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  cat >"$etcd_mod/go.mod" <<GOMOD
module controlplane.local/etcd

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
)
GOMOD
  echo "building etcd $ETCD_VERSION"
  (cd "$etcd_mod" && go mod tidy >/dev/null && go build -trimpath -ldflags "-s -w" -o "$out/etcd.tmp" .)
  mv "$out/etcd.tmp" "$out/etcd"
fi

# kwok: fake kubelets for the nodes; the stage files ship inside the same module.
if ! have kwok; then
  echo "building kwok $KWOK_VERSION"
  GOBIN="$out/.kwok" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  mv "$out/.kwok/kwok" "$out/kwok" && rmdir "$out/.kwok"
fi
kwok_dir="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION"
mkdir -p "$out/kwok-stages"
for f in "$kwok_dir"/kustomize/stage/node/fast/*.yaml "$kwok_dir"/kustomize/stage/pod/fast/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] && continue
  cp -f "$f" "$out/kwok-stages/$(basename "$(dirname "$(dirname "$f")")")-$(basename "$f")"
done
chmod -R u+w "$out/kwok-stages"
echo "control plane $KUBERNETES_VERSION built in $out"
