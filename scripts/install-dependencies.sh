#!/usr/bin/env bash
# Installs the Debian packages Plexor needs (libpq-dev, libssl-dev and libcrypt-dev to build, libcurl4 for
# Foundation's URLSession (the chat's OpenID Connect sign-in), postgresql
# for the embedded database), only when some are missing. With --tests, also
# what the tests need: Node (the browser client's unit tests), TypeScript
# (to type-check it), PHP and Python (to run the README's token examples).
set -euo pipefail

packages=(libpq-dev libssl-dev libcrypt-dev libcurl4 postgresql pkg-config)
if [ "${1:-}" = "--tests" ]; then
    packages+=(nodejs node-typescript php-cli python3)
fi
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing ${missing[*]} with apt-get..." >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "Please install as root: apt-get install ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
