#!/usr/bin/env bash
# Install the Debian packages the test suite needs, if any are missing.
# Runs as part of `make test`; needs root (as on CI and the project's machines).
set -euo pipefail

needed=()
command -v redis-server >/dev/null 2>&1 || needed+=(redis-server)
# PostgreSQL server tools (initdb, pg_ctl) for the throwaway test clusters.
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || needed+=(postgresql)
command -v runuser >/dev/null 2>&1 || needed+=(util-linux)
# The browser suite: Debian's Chromium (Playwright drives it; it never downloads a browser),
# fonts for legible screenshots, and Node.js with npm for the certified provider (oidc-provider).
command -v chromium >/dev/null 2>&1 || needed+=(chromium)
ls /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf >/dev/null 2>&1 || needed+=(fonts-dejavu-core)
command -v node >/dev/null 2>&1 || needed+=(nodejs)
# The HTTP load generator of `make bench` (bench/pages.py).
command -v wrk >/dev/null 2>&1 || needed+=(wrk)

# Some nodejs packages bundle npm (and conflict with Debian's npm): ask for npm only if it is still missing.
install_npm_if_missing() {
  command -v npm >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends npm >/dev/null
}

if [ ${#needed[@]} -eq 0 ] && command -v npm >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing system packages: ${needed[*]:-} (npm?). Install them with: sudo apt-get install -y ${needed[*]:-} npm" >&2
  exit 1
fi
echo "Installing system packages: ${needed[*]:-} (and npm if missing)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ ${#needed[@]} -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
fi
install_npm_if_missing
