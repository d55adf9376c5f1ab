# Shared helpers for setup steps. Every step is idempotent: it checks for what it would install and skips it when
# present. Binaries go to $FLUI_BIN (default ~/.cache/flui/bin); an explicit env var or a binary on PATH wins.
set -euo pipefail

FLUI_CACHE=${FLUI_CACHE:-$HOME/.cache/flui}
FLUI_BIN=${FLUI_BIN:-$FLUI_CACHE/bin}
mkdir -p "$FLUI_BIN" "$FLUI_CACHE/logs"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
fail() {
  printf '\033[31m[setup] error:\033[0m %s\n' "$*" >&2
  exit 1
}

# have_tool NAME ENV_VAR: true when ENV_VAR names an executable, NAME is on PATH, or NAME is in $FLUI_BIN.
have_tool() {
  local name=$1 var=${2:-}
  if [ -n "$var" ] && [ -n "${!var:-}" ]; then
    [ -x "${!var}" ] || fail "$var=${!var} is not an executable file"
    return 0
  fi
  command -v "$name" >/dev/null 2>&1 && return 0
  [ -x "$FLUI_BIN/$name" ]
}

# timed LOGNAME CMD...: runs a long build with its output in a log file, printing elapsed time; shows the log's
# tail when it fails.
timed() {
  local log="$FLUI_CACHE/logs/$1.log"
  shift
  local start=$SECONDS
  if ! "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    fail "step failed after $((SECONDS - start))s (full log: $log)"
  fi
  say "  done in $((SECONDS - start))s"
}

# apt_install PKG...: installs missing Debian packages (needs root, or prints the command to run).
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    fail "missing Debian packages: ${missing[*]}. Install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
  fi
  say "installing Debian packages: ${missing[*]}"
  if [ ! -f "$FLUI_CACHE/.apt-updated" ] || [ -n "$(find "$FLUI_CACHE/.apt-updated" -mmin +1440)" ]; then
    timed apt-update apt-get update -q
    touch "$FLUI_CACHE/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive timed apt-install apt-get install -y -q --no-install-recommends "${missing[@]}"
}

require_cmd() {
  command -v "$1" >/dev/null 2>&1 || fail "$1 is required: $2"
}
