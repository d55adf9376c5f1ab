#!/usr/bin/env bash
# A real Kubernetes control plane from Go modules: kube-apiserver, kube-controller-manager, kube-scheduler and
# kubectl (k8s.io/kubernetes v1.33 through the wrapper module in setup/kubernetes), etcd 3.5, and kwok/kwokctl,
# which run the cluster with fake nodes. Cold: ~10-15 minutes on 2 cores; cached in ~/.cache/flui/bin afterwards.
source "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")/.." && pwd)

KUBE_VERSION=v1.33.13
ETCD_VERSION=v3.5.35
KWOK_VERSION=v0.7.0

# stamped NAME VERSION: true when $FLUI_BIN/NAME was built at VERSION by this step.
stamped() { [ -x "$FLUI_BIN/$1" ] && [ "$(cat "$FLUI_BIN/.$1.version" 2>/dev/null)" = "$2" ]; }
stamp() { echo "$2" >"$FLUI_BIN/.$1.version"; }

require_cmd go "install Go from https://go.dev/dl/ or your package manager"

kube=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
missing=()
for b in "${kube[@]}"; do
  var=FLUI_$(echo "$b" | tr 'a-z-' 'A-Z_')
  if [ -n "${!var:-}" ]; then continue; fi
  stamped "$b" "$KUBE_VERSION" || missing+=("k8s.io/kubernetes/cmd/$b")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "Kubernetes $KUBE_VERSION: building ${missing[*]##*/} from Go modules (first time ~8-10 min)"
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=33 -X $p.gitTreeState=clean -X $p.buildDate=2025-01-01T00:00:00Z"
  done
  (cd "$here/kubernetes" && CGO_ENABLED=0 timed kubernetes go build -trimpath -ldflags="$ld" -o "$FLUI_BIN/" "${missing[@]}")
  for m in "${missing[@]}"; do stamp "${m##*/}" "$KUBE_VERSION"; done
else
  say "Kubernetes $KUBE_VERSION: present"
fi

if [ -n "${FLUI_ETCD:-}" ] || stamped etcd "$ETCD_VERSION"; then
  say "etcd $ETCD_VERSION: present"
else
  say "etcd $ETCD_VERSION: building from Go modules"
  # etcd's go.mod has replace directives, so it is built through the wrapper module in setup/etcd.
  (cd "$here/etcd" && CGO_ENABLED=0 timed etcd go build -trimpath -ldflags="-s -w" -o "$FLUI_BIN/etcd" go.etcd.io/etcd/server/v3)
  stamp etcd "$ETCD_VERSION"
fi

if { [ -n "${FLUI_KWOK:-}" ] && [ -n "${FLUI_KWOKCTL:-}" ]; } || { stamped kwok "$KWOK_VERSION" && stamped kwokctl "$KWOK_VERSION"; }; then
  say "kwok $KWOK_VERSION: present"
else
  say "kwok $KWOK_VERSION: building from Go modules"
  GOBIN=$FLUI_BIN CGO_ENABLED=0 timed kwok go install -trimpath -ldflags="-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
  stamp kwok "$KWOK_VERSION"
  stamp kwokctl "$KWOK_VERSION"
fi
