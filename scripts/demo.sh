#!/usr/bin/env bash
# Sets up, builds, and runs kiln's main job on the bundled demo model: an
# image classifier run end to end on the reference interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
models/demo/run_demo.sh build/kiln
