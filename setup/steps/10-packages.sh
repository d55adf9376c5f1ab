#!/usr/bin/env bash
# Debian packages: the OCI registry (distribution 2.8), htpasswd for its auth, and Chromium for the Web UI test.
source "$(dirname "$0")/../lib.sh"
say "Debian packages (docker-registry, apache2-utils, chromium)"
apt_install docker-registry apache2-utils chromium
