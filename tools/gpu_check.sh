#!/usr/bin/env bash
# One prepared check of fastdl's CUDA path on a machine with an NVIDIA GPU: one command that
# fits in a 9-minute run and needs no package index.
#
#   tools/gpu_check.sh                # build, CUDA tests, timings, one summary table
#   tools/gpu_check.sh --skip-build   # use the fastdl already built in python/fastdl (or installed)
#
# Steps, each under its own `timeout` and all of them within GPU_CHECK_BUDGET_S (default 480 s);
# a step that fails or runs out of time is logged and the next one still runs:
#   1. build    fastdl with FASTDL_CUDA=ON for CUDA_ARCHS (default 90 only) on all cores, in the
#               checkout like the developer build (the modules land in python/fastdl/ and the
#               later steps run with PYTHONPATH=python). GPU_CHECK_INSTALL=pip installs it with
#               `pip install --no-build-isolation --no-deps .` instead.
#   2. tests    pytest -m cuda: every CUDA op against the CPU op, and the models on the device.
#   3. timings  python -m bench cuda, one process per part: sgemm (FP32, TF32) against cuBLAS
#               through CuPy; conv2d fwd+bwd against cuDNN and LSTM fwd+bwd against cuDNN, both
#               through PyTorch; one convnet epoch on Fashion-MNIST on the GPU against PyTorch on
#               the GPU and fastdl on the CPU. Fashion-MNIST's IDX files are read from
#               $FASHION_MNIST_DIR or data/fashion-mnist/ (or data/) in the checkout, never
#               downloaded; without them that row says it was skipped.
#   4. summary  one table of every number beside its target (python -m bench.gpu_report).
#
# Output, all under $OUT when set, else ./gpu-check-out: gpu-check.log (everything printed),
# summary.md (the table), steps.tsv, pytest-cuda.xml, bench-cuda-<part>.json and .md.
# Exit status 0 when every step ended well and every target was met, else 1.
#
# Environment: OUT, GPU_CHECK_BUDGET_S (480), CUDA_ARCHS (90), JOBS (all cores), PYTHON (python3),
# BUILD_DIR (build/gpu-check), FASHION_MNIST_DIR, GPU_CHECK_INSTALL (cmake | pip), and per-step
# limits in seconds: GPU_CHECK_BUILD_S (240), GPU_CHECK_TESTS_S (180), GPU_CHECK_PART_S (90; the
# train part gets GPU_CHECK_TRAIN_S, 150).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)

SKIP_BUILD=0
for arg in "$@"; do
  case "$arg" in
    --skip-build) SKIP_BUILD=1 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

OUT_DIR=${OUT:-$ROOT/gpu-check-out}
mkdir -p "$OUT_DIR" || exit 2
OUT_DIR=$(cd "$OUT_DIR" && pwd)
LOG="$OUT_DIR/gpu-check.log"
STEPS="$OUT_DIR/steps.tsv"
: > "$STEPS"

BUDGET=${GPU_CHECK_BUDGET_S:-480}
REPORT_RESERVE=20
ARCHS=${CUDA_ARCHS:-90}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 4)}
PY=${PYTHON:-$(command -v python3 || command -v python)}
BUILD_DIR=${BUILD_DIR:-build/gpu-check}
INSTALL=${GPU_CHECK_INSTALL:-cmake}
START=$(date +%s)
DEADLINE=$((START + BUDGET))
export PYTHONUNBUFFERED=1
export PYTHONDONTWRITEBYTECODE=1

# Python with the default Ctrl-C handler even when this script was started with SIGINT ignored
# (a background job), so that `timeout -s INT` stops pytest and the benchmark runner the way
# Ctrl-C does: pytest still writes its report and the runner the tables it finished.
pymod() {
  "$PY" -c 'import runpy, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)' "$@"
}

# run_step NAME LIMIT_S COMMAND...: COMMAND under `timeout`, capped by what is left of the budget.
run_step() {
  local name=$1 limit=$2
  shift 2
  local now left t0 rc how
  now=$(date +%s)
  left=$((DEADLINE - REPORT_RESERVE - now))
  if [ "$left" -lt 15 ]; then
    echo "== [$name] skipped: the time budget (${BUDGET} s) is spent"
    printf '%s\t\t0\tskipped (out of time)\n' "$name" >> "$STEPS"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo
  echo "== [$name] $(date -u +%H:%M:%S) limit ${limit} s: $*"
  t0=$(date +%s)
  # shell functions run in a child bash (timeout runs programs, not functions)
  timeout -s INT -k 20 "$limit" bash -c '"$@"' "$name" "$@"
  rc=$?
  case $rc in
    0) how=ok ;;
    124|137) how="timed out (limit ${limit} s)" ;;
    *) how="failed (exit $rc)" ;;
  esac
  echo "== [$name] $how after $(( $(date +%s) - t0 )) s"
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" "$how" >> "$STEPS"
  return 0
}

step_env() {
  echo "python: $PY ($("$PY" --version 2>&1)); jobs: $JOBS; CUDA archs: $ARCHS; budget: $BUDGET s"
  command -v nvidia-smi >/dev/null && timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  command -v nvcc >/dev/null && nvcc --version | tail -n 2
  "$PY" - <<'EOF'
for name in ("numpy", "cupy", "torch", "pybind11", "pytest"):
    try:
        m = __import__(name)
        extra = ""
        if name == "torch":
            extra = f" (CUDA {m.version.cuda}, device: {m.cuda.is_available()})"
        print(f"{name} {getattr(m, '__version__', '?')}{extra}")
    except Exception as e:
        print(f"{name}: not importable ({type(e).__name__}: {e})")
EOF
}

step_build() {
  if [ "$INSTALL" = pip ]; then
    FASTDL_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL=$JOBS "$PY" -m pip install --no-build-isolation \
      --no-deps --no-index -v -C "cmake.define.CMAKE_CUDA_ARCHITECTURES=$ARCHS" \
      -C "build-dir=$BUILD_DIR-pip" .
  else
    local gen=()
    command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
    cmake -S . -B "$BUILD_DIR" ${gen[@]+"${gen[@]}"} -DFASTDL_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" \
          -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE="$PY" &&
      cmake --build "$BUILD_DIR" -j "$JOBS"
  fi
}

step_config() {
  "$PY" -c 'import fastdl, sys
print("fastdl", fastdl.__version__, "from", fastdl.__file__)
fastdl.show_config()
ok = fastdl.cuda.is_available()
print("fastdl.cuda.is_available():", ok)
sys.exit(0 if ok else 3)'
}

export PY ARCHS JOBS BUILD_DIR INSTALL BUDGET
export -f pymod step_env step_build step_config

main() {
  echo "fastdl GPU check, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), output in $OUT_DIR"
  # nvcc is often outside PATH on a fresh machine
  if ! command -v nvcc >/dev/null 2>&1; then
    for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
      [ -x "$d/nvcc" ] && export PATH="$d:$PATH" && break
    done
  fi
  run_step env 40 step_env
  if [ "$SKIP_BUILD" = 1 ]; then
    echo "== [build] skipped (--skip-build)"
    printf 'build\t0\t0\tok (skipped: --skip-build)\n' >> "$STEPS"
  else
    run_step build "${GPU_CHECK_BUILD_S:-240}" step_build
  fi
  if [ "$INSTALL" != pip ]; then
    export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"
  fi
  run_step config 60 step_config

  # only the files with CUDA tests: collecting the others needs packages a GPU machine may lack
  # (hypothesis), and one collection error would stop the whole run
  local cuda_tests
  cuda_tests=$(grep -l "pytest.mark.cuda" tests/test_*.py | tr '\n' ' ')
  # shellcheck disable=SC2086
  run_step tests "${GPU_CHECK_TESTS_S:-180}" pymod pytest -q -m cuda -rfEs -p no:cacheprovider \
    --continue-on-collection-errors --junitxml="$OUT_DIR/pytest-cuda.xml" ${cuda_tests:-tests}

  local part limit
  for part in gemm conv rnn train; do
    limit=${GPU_CHECK_PART_S:-90}
    [ "$part" = train ] && limit=${GPU_CHECK_TRAIN_S:-150}
    run_step "bench-$part" "$limit" pymod bench cuda --cuda-parts "$part" \
      --json "$OUT_DIR/bench-cuda-$part.json" --markdown "$OUT_DIR/bench-cuda-$part.md"
  done

  echo
  echo "== summary ($(( $(date +%s) - START )) s so far)"
  timeout -k 5 "$REPORT_RESERVE" "$PY" -m bench.gpu_report "$OUT_DIR"
  local rc=$?
  echo "gpu_check: done in $(( $(date +%s) - START )) s; log: $LOG; table: $OUT_DIR/summary.md"
  return $rc
}

main 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
