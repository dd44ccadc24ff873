#!/usr/bin/env bash
# The deployment files, checked statically (no container engine on these
# machines): docker-compose validates compose.yaml, docker/check.py that it
# runs what the tests run. Installs Debian's docker-compose when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v docker-compose >/dev/null; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
fi
# Debian's docker-compose runs on Debian's Python (with its yaml); use that one.
/usr/bin/python3 docker/check.py
