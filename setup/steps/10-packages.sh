#!/usr/bin/env bash
# Debian packages: the OCI registry (distribution 2.8), htpasswd for its auth, Chromium for the Web UI test, and
# ShellCheck, which actionlint runs on the `run:` scripts of the workflow Flui generates.
source "$(dirname "$0")/../lib.sh"
say "Debian packages (docker-registry, apache2-utils, chromium, shellcheck)"
apt_install docker-registry apache2-utils chromium shellcheck
