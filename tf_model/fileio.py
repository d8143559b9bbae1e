"""Atomic file writes: a reader (or a crash) never sees half a file, and an error leaves none."""

import os
import tempfile


def atomic_path(path):
    """A temp path beside `path` (same file system, so the final rename is atomic)."""
    directory = os.path.dirname(os.path.abspath(path))
    stem, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".tmp-{stem}-", suffix=ext)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are ordinary files
    return tmp


def write_files_atomic(files):
    """Write {path: bytes} all-or-nothing: stage and fsync every temp file, then rename them in."""
    staged = []
    try:
        for path, data in files.items():
            tmp = atomic_path(path)
            staged.append((tmp, path))
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)


def write_atomic(path, data: bytes):
    write_files_atomic({path: data})
