#!/usr/bin/env bash
# actionlint checks the GitHub Actions workflow Flui generates (a test runs it on rendered files).
source "$(dirname "$0")/../lib.sh"
VERSION=v1.7.12
if [ -n "${FLUI_ACTIONLINT:-}" ] || { [ -x "$FLUI_BIN/actionlint" ] && [ "$(cat "$FLUI_BIN/.actionlint.version" 2>/dev/null)" = "$VERSION" ]; }; then
  say "actionlint $VERSION: present"
  exit 0
fi
require_cmd go "install Go from https://go.dev/dl/ or your package manager"
say "actionlint $VERSION: building with go install"
GOBIN=$FLUI_BIN CGO_ENABLED=0 timed actionlint go install -trimpath -ldflags="-s -w" "github.com/rhysd/actionlint/cmd/actionlint@$VERSION"
echo "$VERSION" >"$FLUI_BIN/.actionlint.version"
