"""Building the chip binding's shared library (tf_model/chip.py loads it).

The CMake target picogpt_shared (the runtime plus cim_runtime/bindings/, built like the host
build: -O3, SIMD kernels chosen at run time by the CPU) is built on first use into
build/python-chip/ of the repository, as libpicogpt-<hash>.so, where <hash> covers every source
it is made of: an edited source gives a new library. The build runs under a file lock and the
finished library is renamed into place, so a half-built library is never loaded and concurrent
first uses build it once. It needs CMake >= 3.25 and a C compiler.
"""

import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_DIR = os.path.join(ROOT, "build", "python-chip")
# What the library is made of: a change to any of these rebuilds it.
SOURCE_PATTERNS = (
    "CMakeLists.txt",
    "cmake/picogpt_model.cmake",  # included by CMakeLists.txt whatever it builds
    "cim_runtime/include/pico_gpt/*.h",
    "cim_runtime/src/*.[ch]",
    "cim_runtime/src/kernels/*.[ch]",
    "cim_runtime/bindings/*.c",
)
C_FLAGS = "-O3 -DNDEBUG"  # the host-release preset's (SIMD kernels are picked at run time)
INSTALL_HINT = (
    "install CMake (>= 3.25) and a C compiler, e.g. `apt-get install cmake gcc` on Debian/Ubuntu "
    "or `xcode-select --install && brew install cmake` on macOS"
)


class ChipError(RuntimeError):
    """The C runtime refused a model or an input; the message has its status and reason."""


class ChipBuildError(ChipError):
    """The shared library could not be built; the message says what is missing."""


def source_files(root=ROOT):
    files = sorted({f for p in SOURCE_PATTERNS for f in glob.glob(os.path.join(root, p))})
    if not any(f.endswith("runtime.c") for f in files):
        raise ChipBuildError(
            f"the C runtime's sources are not in {root}/cim_runtime: the binding builds them, so "
            "use tf_model from the repository checkout (uv sync installs it in place)"
        )
    return files


def source_digest(root=ROOT):
    h = hashlib.sha256(C_FLAGS.encode())
    for path in source_files(root):
        h.update(os.path.relpath(path, root).encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def find_c_compiler():
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name.split()[0]):
            return name
    return None


def _run_build(cmd, what):
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        log = (proc.stdout + proc.stderr).strip().splitlines()
        raise ChipBuildError(
            f"{what} of the C runtime for Python failed ({' '.join(cmd)}):\n"
            + "\n".join(log[-30:])
            + f"\nIf a tool is missing: {INSTALL_HINT}"
        )


def build_library(build_dir=BUILD_DIR, root=ROOT, quiet=False):
    """Path of the shared library for the current sources, built if it is not there yet."""
    suffix = ".dylib" if sys.platform == "darwin" else ".so"
    target = os.path.join(build_dir, f"libpicogpt-{source_digest(root)}{suffix}")
    if os.path.exists(target):
        return target
    if shutil.which("cmake") is None:
        raise ChipBuildError(
            f"cmake not found: the chip binding builds the C runtime on first use; {INSTALL_HINT}"
        )
    compiler = find_c_compiler()
    if compiler is None:
        raise ChipBuildError(
            "no C compiler found ($CC, cc, gcc or clang): the chip binding builds the C runtime "
            f"on first use; {INSTALL_HINT}"
        )
    try:
        os.makedirs(build_dir, exist_ok=True)
        lock = open(os.path.join(build_dir, ".lock"), "w")  # noqa: SIM115 (held by the with below)
    except OSError as e:
        raise ChipBuildError(
            f"cannot create the binding's build directory {build_dir}: {e.strerror}; the first "
            "use builds the C runtime there, so it must be writable"
        ) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait, then find the result
        if os.path.exists(target):
            return target
        start = time.monotonic()
        if not quiet:
            print(
                f"building the C runtime for Python (first use) in {build_dir} ...", file=sys.stderr
            )
        tree = os.path.join(build_dir, "cmake")
        _run_build(
            [
                "cmake", "-S", root, "-B", tree, "-DCMAKE_BUILD_TYPE=Release",
                f"-DCMAKE_C_COMPILER={compiler}", f"-DCMAKE_C_FLAGS_RELEASE={C_FLAGS}",
                "-DPICOGPT_BUILD_SHARED=ON", "-DPICOGPT_BUILD_HOST_APPS=OFF",
                "-DPICOGPT_BUILD_TESTS=OFF", "-DPICOGPT_BUILD_FUZZER=OFF",
                "-DPICOGPT_BUILD_FIRMWARE=OFF",
            ],
            "configuring",
        )  # fmt: skip
        _run_build(
            [
                "cmake",
                "--build",
                tree,
                "--target",
                "picogpt_shared",
                "-j",
                str(os.cpu_count() or 2),
            ],
            "building",
        )
        built = glob.glob(os.path.join(tree, f"libpicogpt_shared{suffix}"))
        if not built:
            raise ChipBuildError(
                f"the build finished but left no libpicogpt_shared{suffix} in {tree}"
            )
        staging = target + ".tmp"
        shutil.copyfile(built[0], staging)
        os.replace(staging, target)  # readers see the whole library or none
        for old in glob.glob(os.path.join(build_dir, f"libpicogpt-*{suffix}")):
            if old != target:
                os.unlink(old)  # a process that loaded it keeps its mapping
        if not quiet:
            print(f"built {target} in {time.monotonic() - start:.0f} s", file=sys.stderr)
    return target
