"""Build fastdl._cuda against the CPU emulation of the CUDA runtime (see README.md).

    python tests/cuda_emu/build_emu.py [--asan] [OUT]   # default OUT: build/cuda_emu

Rewrites every kernel launch in csrc/cuda (all its family folders) into a call
of emu_launch, compiles the kernels and the real bindings (csrc/bindings_cuda) with the host compiler,
and lays out OUT/pkg/fastdl (the Python package with the CPU module already
built in python/fastdl, or else the one of the installed fastdl, and the
emulated _cuda). Sources compile in parallel (EMU_JOBS, default: the CPU count).
Then run the CUDA tests with the stand-in CuPy:

    PYTHONPATH=OUT/pkg:tests/cuda_emu python -m pytest tests/test_cuda.py

--asan builds with AddressSanitizer, so an out-of-bounds read or write in a
kernel stops the run; run Python with the runtime preloaded:

    LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so)" \
        ASAN_OPTIONS=detect_leaks=0 PYTHONPATH=OUT/pkg:tests/cuda_emu \
        python -m pytest tests/test_cuda.py
"""
import concurrent.futures
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LAUNCH = re.compile(r"(\b[\w:]+(?:<[^;{}()<>]*>)?)\s*<<<(.*?)>>>\s*\(", re.S)


def rewrite(src, dst):
    with open(src) as f:
        text = f.read()
    text, n = LAUNCH.subn(r"emu_launch(\2, \1, ", text)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.exists(dst):
        with open(dst) as f:
            if f.read() == text:
                return n  # unchanged: keep its time stamp, and the object file
    with open(dst, "w") as f:
        f.write(text)
    return n


def newest_input(src):
    """Latest change among src and every header it could include."""
    heads = glob.glob(os.path.join(ROOT, "csrc", "**", "*.h*"), recursive=True)
    heads += glob.glob(os.path.join(HERE, "include", "*.h"))
    return max(os.path.getmtime(p) for p in [src, *heads])


def main():
    args = [a for a in sys.argv[1:] if a != "--asan"]
    asan = "--asan" in sys.argv[1:]
    out = os.path.abspath(args[0] if args else os.path.join(ROOT, "build", "cuda_emu"))
    gen = os.path.join(out, "gen")
    sources = []
    cuda_dir = os.path.join(ROOT, "csrc", "cuda")
    for src in sorted(glob.glob(os.path.join(cuda_dir, "**", "*"), recursive=True)):
        if not os.path.isfile(src):
            continue
        rel = os.path.relpath(src, cuda_dir)  # family/name
        if rel.endswith(".cu"):
            dst = os.path.join(gen, "cuda_src", rel[:-3] + ".cpp")
            sources.append(dst)
        else:
            dst = os.path.join(gen, "cuda", rel)  # headers, found before csrc/cuda
        rewrite(src, dst)
    sources += sorted(glob.glob(os.path.join(ROOT, "csrc", "bindings_cuda", "*.cpp")))
    includes = subprocess.check_output([sys.executable, "-m", "pybind11", "--includes"],
                                       text=True).split()
    flags = ["-std=c++20", "-O1", "-fPIC", "-pthread", "-fvisibility=hidden",
             "-I" + os.path.join(HERE, "include"), "-I" + gen, "-I" + os.path.join(ROOT, "csrc"),
             *includes, '-DFASTDL_CUDA_ARCHS="emulated"', '-DFASTDL_NVCC_VERSION="none"']
    san = ["-fsanitize=address", "-fno-omit-frame-pointer"] if asan else []
    flags += san
    objs = os.path.join(out, "obj-asan" if asan else "obj")
    os.makedirs(objs, exist_ok=True)
    cxx = os.environ.get("CXX", "g++")
    objects, todo = [], []
    for src in sources:
        # One object per source, named after its path (two families may share a file name).
        name = os.path.relpath(src, gen if src.startswith(gen) else ROOT)
        obj = os.path.join(objs, name.replace(os.sep, "_") + ".o")
        if not os.path.exists(obj) or os.path.getmtime(obj) < newest_input(src):
            todo.append((src, obj))
        objects.append(obj)

    def compile_one(job):
        src, obj = job
        print("compiling", os.path.relpath(src, out if src.startswith(out) else ROOT), flush=True)
        subprocess.check_call([cxx, *flags, "-c", src, "-o", obj])

    jobs = int(os.environ.get("EMU_JOBS", 0)) or os.cpu_count() or 1
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        list(pool.map(compile_one, todo))  # re-raises the first failure
    ext = sysconfig.get_config_var("EXT_SUFFIX")
    src_pkg = os.path.join(ROOT, "python", "fastdl")
    cpu_module = glob.glob(os.path.join(src_pkg, "_C" + ext))
    if not cpu_module:  # not built in-tree (a pip install): take the installed one
        spec = importlib.util.find_spec("fastdl._C")
        if spec is None or not spec.origin:
            sys.exit("build_emu: no CPU module: build it (cmake, see README.md) or pip install "
                     "fastdl first")
        cpu_module = [spec.origin]
    pkg = os.path.join(out, "pkg", "fastdl")
    if os.path.exists(pkg):
        shutil.rmtree(pkg)
    shutil.copytree(src_pkg, pkg, ignore=shutil.ignore_patterns("_cuda*", "_C*", "__pycache__"))
    shutil.copy2(cpu_module[0], pkg)
    subprocess.check_call([cxx, "-shared", "-pthread", *san, *objects, "-o",
                           os.path.join(pkg, "_cuda" + ext)])
    print("emulated module in", pkg)


if __name__ == "__main__":
    main()
