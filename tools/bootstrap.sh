#!/usr/bin/env bash
# Sets up a Debian 12 machine that has only Node and npm: installs the Debian
# packages QuantLens builds and tests with when they are missing, the npm
# packages, and the real models the project fetches itself. Quiet when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# cmake/g++: native core and tests; emscripten: the WASM module; eigen, catch2;
# protobuf: the cross-check against libprotobuf; python3-onnx/numpy: the
# independent reference; libonnx-testdata: Debian's ONNX test models;
# chromium: browser tests; clang (/usr/bin/clang++, from clang-14) and libclang-rt-14-dev
# (libclang_rt.fuzzer and the sanitizer runtimes): the libFuzzer harnesses (tools/fuzz.sh);
# clang-format: the lint step (tools/lint.sh).
PKGS=(cmake g++ make git emscripten libeigen3-dev catch2 protobuf-compiler libprotobuf-dev
      python3 python3-onnx python3-numpy libonnx-testdata chromium clang clang-14 libclang-rt-14-dev
      clang-format)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "bootstrap: npm ci"
  # onnxruntime-node's install script would download from a host this machine cannot reach;
  # its CPU binaries ship in the package and need nothing more.
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
fi

node tools/fetch-models.mjs
