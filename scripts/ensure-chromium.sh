#!/usr/bin/env bash
# Browser tests drive Debian's Chromium (/usr/bin/chromium) with Playwright; never a browser download.
# Installs it with apt when it is absent (as root, or through sudo).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
echo "recon: /usr/bin/chromium is missing; installing Debian's chromium with apt" >&2
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "recon: not root and no sudo: install chromium yourself (apt-get install chromium)" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
test -x /usr/bin/chromium
