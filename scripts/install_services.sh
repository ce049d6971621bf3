#!/usr/bin/env bash
# Installs the servers the test suite starts for itself (PostgreSQL, Redis) and the browser
# its browser tests drive (Chromium, with the DejaVu fonts the layout checks are measured in)
# from Debian packages when they are missing. Needs root; prints what it does.
set -euo pipefail

need=()
pg_bindir() {
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return 0; }; done
  command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)" && return 0
  return 1
}
pg_bindir >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v msgfmt >/dev/null 2>&1 || need+=(gettext)  # checks the Kiswahili catalogue
# tests/browser/ launches Debian's chromium through Playwright (which cannot download its own).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)

if [ ${#need[@]} -eq 0 ]; then
  echo "install_services: PostgreSQL, Redis, gettext and Chromium are present"
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "install_services: missing ${need[*]} and not root: install them (Debian: apt-get install ${need[*]})" >&2
  exit 1
fi
echo "install_services: installing ${need[*]} from Debian packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The packages start system services we do not use; the tests run their own instances.
service postgresql stop >/dev/null 2>&1 || true
service redis-server stop >/dev/null 2>&1 || true
echo "install_services: done"
