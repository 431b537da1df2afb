#!/usr/bin/env bash
# Build fastdl with AddressSanitizer + UndefinedBehaviorSanitizer (-DFASTDL_SANITIZE=ON) and run
# the test suite, or a subset of it, against that build. Any sanitizer report fails the run.
#
#   tools/run_sanitized_tests.sh                 # the default subset (covers every kernel)
#   tools/run_sanitized_tests.sh --all           # the whole test suite
#   tools/run_sanitized_tests.sh tests/test_gemm.py -k strided   # any pytest arguments
#
# Environment: BUILD_DIR (default build/sanitize), JOBS (default 2), PYTHON (default python3).
#
# The normal in-tree build is left alone: the sanitized module is built in its own build folder
# (configured with SKBUILD=ON, which keeps the module in that folder instead of writing it next to
# the Python sources), then copied with the Python package into a temporary folder that goes first
# on PYTHONPATH. The interpreter itself is not instrumented, so libasan is preloaded; leak
# detection is off (CPython keeps objects alive until exit by design).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
BUILD_DIR=${BUILD_DIR:-build/sanitize}
JOBS=${JOBS:-2}

# Default subset: every kernel family (GEMM, conv, pooling, recurrent, element-wise/loss/optimizer
# through the model tests), the property-based and size tests, and the malformed-argument fuzzing.
DEFAULT_TESTS=(
  tests/test_gemm.py tests/test_conv.py tests/test_pool.py tests/test_rnn.py
  tests/test_properties.py tests/test_sizes.py tests/test_concurrency.py tests/test_determinism.py
)
for f in tests/test_nn_ops.py tests/test_optimizers.py tests/test_layers.py tests/test_model.py \
    tests/test_normalization.py; do
  [ -f "$f" ] && DEFAULT_TESTS+=("$f")
done

if [ "${1:-}" = "--all" ]; then
  shift
  ARGS=(tests "$@")
elif [ $# -gt 0 ]; then
  ARGS=("$@")
else
  ARGS=("${DEFAULT_TESTS[@]}")
fi

CC_BIN=${CC:-gcc}
LIBASAN=$("$CC_BIN" -print-file-name=libasan.so)
# libstdc++ too: python does not link it, and ASan's __cxa_throw interceptor must find the real
# one when the first C++ exception is thrown (else: CHECK failed ... real___cxa_throw).
LIBSTDCXX=$("$CC_BIN" -print-file-name=libstdc++.so)
if [ ! -e "$LIBASAN" ]; then
  echo "run_sanitized_tests: libasan.so not found (is the compiler's sanitizer runtime installed?)" >&2
  exit 2
fi

GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
start=$(date +%s)
cmake -S . -B "$BUILD_DIR" "${GEN[@]}" -DFASTDL_SANITIZE=ON -DFASTDL_CUDA=OFF -DSKBUILD=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPython_EXECUTABLE="$(command -v "$PYTHON")" >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS" --target _C
built=$(date +%s)

MOD=$(ls "$BUILD_DIR"/_C*.so 2>/dev/null | head -n 1)
if [ -z "$MOD" ]; then
  echo "run_sanitized_tests: the sanitized module was not found in $BUILD_DIR" >&2
  exit 2
fi
PKG=$(mktemp -d)
trap 'rm -rf "$PKG"' EXIT
cp -r python/fastdl "$PKG/fastdl"
rm -f "$PKG"/fastdl/_C*.so "$PKG"/fastdl/_C*.pyd
find "$PKG" -name __pycache__ -prune -exec rm -rf {} +
cp "$MOD" "$PKG/fastdl/"

REPORT_DIR="$PKG/reports"
mkdir -p "$REPORT_DIR"
export PYTHONPATH="$PKG${PYTHONPATH:+:$PYTHONPATH}"
export LD_PRELOAD="$LIBASAN:$LIBSTDCXX${LD_PRELOAD:+:$LD_PRELOAD}"
# log_path: reports from subprocesses the tests start are collected too.
# allocator_may_return_null: a huge request (tests ask for terabytes on purpose) is a
# MemoryError in Python, as without ASan, instead of an ASan abort.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1:log_path=$REPORT_DIR/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$REPORT_DIR/ubsan"
# Tests that fuzz malformed arguments in subprocesses read this to allow the sanitizer runtime.
export FASTDL_SANITIZED=1

# The module must be the sanitized one (not an installed or in-tree copy).
"$PYTHON" -c "import fastdl, sys; p = fastdl.ops._C.__file__; sys.exit(0 if p.startswith('$PKG') else 'wrong module: ' + p)"

status=0
# --capture=sys: reports the runtimes write straight to file descriptor 2 (UBSan ignores
# log_path when it runs inside ASan's runtime) reach the log even when they halt pytest.
"$PYTHON" -m pytest -q -p no:cacheprovider --capture=sys "${ARGS[@]}" || status=$?
end=$(date +%s)

reports=$(ls "$REPORT_DIR" 2>/dev/null | wc -l)
if [ "$reports" -gt 0 ]; then
  echo "run_sanitized_tests: $reports sanitizer report(s):" >&2
  for f in "$REPORT_DIR"/*; do echo "---- $(basename "$f")" >&2; cat "$f" >&2; done
  [ $status -eq 0 ] && status=1
fi
echo "run_sanitized_tests: build $((built - start)) s, tests $((end - built)) s, reports: $reports, exit $status"
exit $status
