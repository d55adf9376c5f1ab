#!/usr/bin/env bash
# Temporal CLI: dev server + Web UI. v1.5.1 is the newest that `go install` builds (later ones carry a `replace`).
source "$(dirname "$0")/../lib.sh"
if have_tool temporal TEMPORAL_CLI_PATH; then
  say "Temporal CLI: present ($(command -v temporal || echo "${TEMPORAL_CLI_PATH:-$FLUI_BIN/temporal}"))"
  exit 0
fi
require_cmd go "install Go from https://go.dev/dl/ or your package manager"
say "Temporal CLI v1.5.1: building with go install (first time only, a few minutes)"
GOBIN=$FLUI_BIN CGO_ENABLED=0 timed temporal-cli go install github.com/temporalio/cli/cmd/temporal@v1.5.1
