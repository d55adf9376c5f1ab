#!/usr/bin/env bash
# zizmor audits the GitHub Actions workflow Flui generates for security problems (a test runs it offline on rendered
# files). From PyPI, into its own virtual environment under the cache, so it never touches the system's Python.
source "$(dirname "$0")/../lib.sh"
VERSION=1.32.0
VENV=$FLUI_CACHE/zizmor
if [ -n "${FLUI_ZIZMOR:-}" ] || { [ -x "$FLUI_BIN/zizmor" ] && [ "$(cat "$FLUI_BIN/.zizmor.version" 2>/dev/null)" = "$VERSION" ]; }; then
  say "zizmor $VERSION: present"
  exit 0
fi
require_cmd python3 "install Python 3 (Debian: python3 python3-venv)"
python3 -c 'import venv, ensurepip' 2>/dev/null || fail "Python's venv module is missing: install it (Debian: apt-get install python3-venv)"
say "zizmor $VERSION: installing from PyPI"
rm -rf "$VENV"
timed zizmor-venv python3 -m venv "$VENV"
timed zizmor-pip "$VENV/bin/pip" install --disable-pip-version-check --no-input "zizmor==$VERSION"
ln -sf "$VENV/bin/zizmor" "$FLUI_BIN/zizmor"
echo "$VERSION" >"$FLUI_BIN/.zizmor.version"
