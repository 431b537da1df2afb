"""python -m fastdl.demo: the main job (placeholder until the model API lands: a GEMM table)."""
import sys


def main(argv=None):
    from .bench.__main__ import main as bench_main
    return bench_main(["gemm", "--quick"] + list(argv or []))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
