#!/usr/bin/env bash
# Installs what kiln needs to build and test on Debian 12: the compiler's
# libraries from Debian, and a Python environment (.venv) used only by tests
# and benchmarks. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(cmake ninja-build pkg-config gcc clang-19 libclang-rt-19-dev llvm-19-dev
          liblua5.4-dev libsqlite3-dev libprotobuf-c-dev protobuf-c-compiler
          zlib1g-dev libxgboost-dev gnuplot-nox)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The test-only Python environment.
PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
  echo "setup: installing onnx, onnxruntime, numpy into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -r tests/requirements.txt
fi
echo "setup: ok"
