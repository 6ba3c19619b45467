#!/usr/bin/env bash
# Builds the core natively (build/native: the driver, CLE and pruning tools, the cross-check) and to
# WebAssembly (web/dist/quantlens_core.{mjs,wasm} via build/wasm). Incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's Emscripten optimizer needs Debian's acorn, which Node does not search by default.
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
jobs=$(nproc)

if [ ! -f build/native/CMakeCache.txt ]; then
  cmake -S . -B build/native -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
# The native tools only (driver, CLE, pruning, the protobuf cross-check): the unit tests run
# from the sanitized build (tools/run-tests.sh); a quick release run of them:
#   cmake --build build/native --target quantlens_tests && build/native/quantlens_tests
cmake --build build/native -j"$jobs" --target quantlens_tools 2>&1 | grep -v -E '^\[|^(Consolidate|Scanning|Built target)' || true
test -x build/native/quantlens_native

if [ ! -f build/wasm/CMakeCache.txt ]; then
  # Eigen is header-only: the emscripten toolchain's sysroot search misses it, so point at it.
  emcmake cmake -S . -B build/wasm -DCMAKE_BUILD_TYPE=Release -DEigen3_DIR=/usr/share/eigen3/cmake >/dev/null
fi
cmake --build build/wasm -j"$jobs" 2>&1 | grep -v -E '^\[|^(Consolidate|Scanning|Built target)' || true
test -f web/dist/quantlens_core.wasm
# The .wasm as base64 in an ES module, for the 'quantlens/inline' entry.
node tools/build-inline.mjs


# The app: one self-contained HTML file (web/dist/app/index.html).
node tools/build-app.mjs
