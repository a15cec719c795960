#!/usr/bin/env bash
# Configures and builds kiln into build/ (warnings are errors).
# KILN_BUILD_DIR picks another folder; KILN_TARGETS builds only those targets.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${KILN_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja -DKILN_WERROR=ON -DKILN_PYTHON="$PWD/.venv/bin/python" "$@" >/dev/null
ninja -C "$BUILD" ${KILN_TARGETS:-}
