"""Atomic file writes: a reader (or a crash) never sees half a file, and an error leaves none.

write_files_atomic({"a.bin": b"...", "b.json": b"..."})     # all files or none

with staged_files() as stage:                               # files made by other code
    model.save(stage.path("out/model.keras"))
    stage.write("out/model_config.pkl", pickle.dumps(config))
# both are in place here; after an exception neither changed and no temp file is left
"""

import contextlib
import hashlib
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


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _unlink_quietly(path):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


_NO_BACKUP = object()  # the file system has no hard links: that file cannot be rolled back


def _hard_link_backup(path):
    """A second name for `path`'s current contents (no copy), or None if `path` does not exist."""
    if not os.path.exists(path):
        return None
    backup = atomic_path(path)
    os.unlink(backup)  # os.link needs the name to be free
    try:
        os.link(path, backup)
    except OSError:  # e.g. FAT or some network file systems
        return _NO_BACKUP
    return backup


class StagedFiles:
    """Temp files beside their targets, renamed into place together by `commit`."""

    def __init__(self):
        self._staged = []  # (temp path, final path), in commit order

    def path(self, final_path):
        """A fresh temp path for `final_path` that the caller fills (e.g. Keras' model.save)."""
        tmp = atomic_path(final_path)
        self._staged.append((tmp, final_path))
        return tmp

    def write(self, final_path, data: bytes):
        tmp = self.path(final_path)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def commit(self):
        """Rename every temp file into place, in staging order. If a rename fails, the files
        already replaced get their previous contents back (kept as hard links until the end)."""
        backups = {}  # final path -> hard link to its previous contents; None: it did not exist
        try:
            for _, path in self._staged:
                backups[path] = _hard_link_backup(path)
            done = []
            try:
                for tmp, path in self._staged:
                    os.replace(tmp, path)
                    done.append(path)
            except BaseException:
                for path in reversed(done):
                    if backups[path] is None:
                        _unlink_quietly(path)
                    elif backups[path] is not _NO_BACKUP:
                        os.replace(backups[path], path)
                raise
        finally:
            for backup in backups.values():
                if backup not in (None, _NO_BACKUP):
                    _unlink_quietly(backup)
            self.discard()

    def discard(self):
        for tmp, _ in self._staged:
            _unlink_quietly(tmp)
        self._staged = []


@contextlib.contextmanager
def staged_files():
    """Stage files inside the block; commit them all when it ends, discard them on an exception
    (Ctrl-C included)."""
    stage = StagedFiles()
    try:
        yield stage
    except BaseException:
        stage.discard()
        raise
    stage.commit()


def write_files_atomic(files):
    """Write {path: bytes} all-or-nothing: stage and fsync every temp file, then rename them in."""
    with staged_files() as stage:
        for path, data in files.items():
            stage.write(path, data)


def write_atomic(path, data: bytes):
    write_files_atomic({path: data})
