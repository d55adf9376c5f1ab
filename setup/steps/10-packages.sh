#!/usr/bin/env bash
# Debian packages: the OCI registry (distribution 2.8), htpasswd for its auth, Chromium for the Web UI test,
# ShellCheck (actionlint runs it on the `run:` scripts of the workflow Flui generates), and the daemonless image
# tools: buildah (the self-hosted builder and the worker's own image), skopeo (seeding base images offline), crun (an
# OCI runtime), uidmap (newuidmap/newgidmap for user namespaces) and busybox-static (a tiny base image).
source "$(dirname "$0")/../lib.sh"
say "Debian packages (docker-registry, apache2-utils, chromium, shellcheck, buildah, skopeo, crun, uidmap, busybox-static)"
apt_install docker-registry apache2-utils chromium shellcheck buildah skopeo crun uidmap busybox-static
