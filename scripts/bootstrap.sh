#!/usr/bin/env bash
# Installs what the project needs on a machine with Python 3.11 and Node.js/npm:
# uv (from PyPI), the locked Python packages in .venv, and the locked npm packages
# (solc, OpenZeppelin, anvil) in node_modules. Fast when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
if ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: installing uv ${UV_VERSION} from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}" \
    || python3 -m pip install --quiet --user --disable-pip-version-check "uv==${UV_VERSION}"
fi
UV=$(command -v uv || echo "$HOME/.local/bin/uv")

"$UV" sync --frozen --quiet
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "bootstrap: installing npm packages (solc, OpenZeppelin, anvil)"
  npm ci --no-audit --no-fund --loglevel=error
fi
