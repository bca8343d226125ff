#!/usr/bin/env bash
# The test run: pytest starts and stops every service it needs (broker, PostgreSQL, ...) through fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest "$@"
