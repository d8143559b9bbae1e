"""Atomic file writes: a reader (or a crash) never sees half a file."""

import os
import tempfile


def write_atomic(path, data: bytes):
    """Write `data` to a temp file beside `path`, fsync it, then rename it over `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_path(path):
    """A temp path beside `path` for writers that insist on a file name (e.g. model.save)."""
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    stem, ext = os.path.splitext(base)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".tmp-{stem}-", suffix=ext)
    os.close(fd)
    return tmp
