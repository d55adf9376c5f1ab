#!/usr/bin/env bash
# A real Kubernetes control plane from Go modules, for kwok clusters (dev/kwok.ts):
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  k8s.io/kubernetes through setup/kubernetes
#   etcd                                                              go.etcd.io/etcd/server/v3 through setup/etcd
#   kwok, kwokctl                                                     sigs.k8s.io/kwok, go install
# Versions come from the wrapper modules' go.mod (one place to change); a binary in $FLUI_BIN is rebuilt when its
# stamp $FLUI_BIN/.NAME.version differs. A binary named by its environment variable (FLUI_KUBE_APISERVER, FLUI_ETCD,
# FLUI_KWOKCTL, ...: the name upper-cased, '-' as '_'), or found on PATH when $FLUI_BIN has none (kubectl excepted),
# is used as is.
# Cold on 2 shared cores (empty Go module and build caches): Kubernetes ~8 min, etcd 72 s, kwok 145 s; cached
# afterwards (a warm run takes well under a second).
source "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")/.." && pwd)

module_version() { awk -v m="$2" '$1 == m || ($1 == "require" && $2 == m) { print $NF; exit }' "$here/$1/go.mod"; }
KUBE_VERSION=$(module_version kubernetes k8s.io/kubernetes)
ETCD_VERSION=$(module_version etcd go.etcd.io/etcd/server/v3)
KWOK_VERSION=v0.7.0
[ -n "$KUBE_VERSION" ] && [ -n "$ETCD_VERSION" ] || fail "cannot read the versions from setup/{kubernetes,etcd}/go.mod"

# need VERSION NAME...: sets TO_BUILD to the names to build, in the order dev/tools.ts looks binaries up: a
# binary named by its environment variable is used as is; one in $FLUI_BIN is rebuilt unless stamped at VERSION;
# otherwise one on PATH is used as is (but never kubectl: see below).
need() {
  local version=$1 name var path
  shift
  TO_BUILD=()
  for name in "$@"; do
    var=FLUI_$(echo "$name" | tr 'a-z-' 'A-Z_')
    if [ -n "${!var:-}" ]; then
      [ -x "${!var}" ] || fail "$var=${!var} is not an executable file"
      say "  $name: using ${!var} (\$$var)"
    elif [ -e "$FLUI_BIN/$name" ]; then
      [ -x "$FLUI_BIN/$name" ] && [ "$(cat "$FLUI_BIN/.$name.version" 2>/dev/null)" = "$version" ] || TO_BUILD+=("$name")
    elif [ "$name" != kubectl ] && path=$(command -v "$name" 2>/dev/null); then
      # Not kubectl: the one on PATH is often a cloud SDK's dispatcher of another version that writes under ~;
      # the tests and the sandbox use one that matches the control plane.
      say "  $name: using $path (PATH; \$$var or $FLUI_BIN/$name takes precedence)"
    else
      TO_BUILD+=("$name")
    fi
  done
}
stamp() {
  local version=$1 name
  shift
  for name in "$@"; do echo "$version" >"$FLUI_BIN/.$name.version"; done
}

require_cmd go "install Go from https://go.dev/dl/ or your package manager"
export CGO_ENABLED=0

need "$KUBE_VERSION" kube-apiserver kube-controller-manager kube-scheduler kubectl
kube=("${TO_BUILD[@]}")
if [ ${#kube[@]} -gt 0 ]; then
  say "Kubernetes $KUBE_VERSION: building ${kube[*]} from Go modules (cold: ~8 min on 2 cores)"
  minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    ld="$ld -X $p.buildDate=2025-01-01T00:00:00Z"
  done
  (cd "$here/kubernetes" && timed kubernetes go build -trimpath -ldflags="$ld" -o "$FLUI_BIN/" \
    "${kube[@]/#/k8s.io/kubernetes/cmd/}")
  for b in "${kube[@]}"; do
    [ "$b" = kubectl ] && continue # kubectl --version wants a server
    "$FLUI_BIN/$b" --version | grep -qF "Kubernetes $KUBE_VERSION" || fail "$b does not report $KUBE_VERSION"
  done
  stamp "$KUBE_VERSION" "${kube[@]}"
else
  say "Kubernetes $KUBE_VERSION: present"
fi

need "$ETCD_VERSION" etcd
if [ ${#TO_BUILD[@]} -gt 0 ]; then
  say "etcd $ETCD_VERSION: building from Go modules (cold: ~1-2 min)"
  # etcd's go.mod carries replace directives, so `go install` refuses it; setup/etcd is a wrapper module.
  (cd "$here/etcd" && timed etcd go build -trimpath -ldflags="-s -w" -o "$FLUI_BIN/etcd" go.etcd.io/etcd/server/v3)
  "$FLUI_BIN/etcd" --version | grep -qF "etcd Version: ${ETCD_VERSION#v}" || fail "etcd does not report $ETCD_VERSION"
  stamp "$ETCD_VERSION" etcd
else
  say "etcd $ETCD_VERSION: present"
fi

need "$KWOK_VERSION" kwok kwokctl
kwok=("${TO_BUILD[@]}")
if [ ${#kwok[@]} -gt 0 ]; then
  say "kwok $KWOK_VERSION: building ${kwok[*]} with go install (cold: ~2-3 min)"
  pkgs=()
  for b in "${kwok[@]}"; do pkgs+=("sigs.k8s.io/kwok/cmd/$b@$KWOK_VERSION"); done
  GOBIN=$FLUI_BIN timed kwok go install -trimpath -ldflags="-s -w" "${pkgs[@]}"
  stamp "$KWOK_VERSION" "${kwok[@]}"
else
  say "kwok $KWOK_VERSION: present"
fi
