#!/usr/bin/env bash
# Debian packages: the OCI registry (distribution 2.8), htpasswd for its auth, Chromium for the Web UI test, and
# shellcheck, which actionlint runs on the generated workflow's `run:` scripts.
source "$(dirname "$0")/../lib.sh"
say "Debian packages (docker-registry, apache2-utils, chromium, shellcheck)"
apt_install docker-registry apache2-utils chromium shellcheck
