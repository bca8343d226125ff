#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for Wanying: system packages (as root), the venv in .venv, pinned Python deps.
# Safe to run again: every step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(postgresql-15 fonts-noto-cjk orthanc orthanc-dicomweb orthanc-gdcm dcmtk chromium)

need_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  if [[ $EUID -ne 0 ]]; then
    echo "setup: please install as root: apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-}
if [[ -z "$PY" ]]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY=$candidate; break
    fi
  done
fi
[[ -n "$PY" ]] || { echo "setup: Python 3.11 is required" >&2; exit 1; }

if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $PY"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check "uv==0.13.8"
echo "setup: installing pinned Python dependencies (constraints.txt)"
.venv/bin/uv pip install -q --python .venv/bin/python -c constraints.txt -e ".[test]"
# The web pages (web/): npm ci when the lock file changed, vite build when the lock or any source changed.
# Stamps hold a hash of what they were made from; dist/ and node_modules/ are never committed.
if [[ -f web/package-lock.json ]]; then
  command -v npm >/dev/null || { echo "setup: node 20 and npm are needed to build web/" >&2; exit 1; }
  lock_hash=$(sha256sum web/package-lock.json | cut -d' ' -f1)
  if [[ "$(cat web/node_modules/.wanying-lock 2>/dev/null)" != "$lock_hash" ]]; then
    echo "setup: npm ci in web/"
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_hash" > web/node_modules/.wanying-lock
  fi
  src_hash=$( (cd web && find . \( -path ./node_modules -o -path ./dist \) -prune -o -type f -print \
    | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -d' ' -f1)
  if [[ "$(cat web/dist/.wanying-build 2>/dev/null)" != "$src_hash" ]]; then
    echo "setup: building web/ (vite)"
    (cd web && npm run build --silent)
    echo "$src_hash" > web/dist/.wanying-build
  fi
fi
echo "setup: done"
