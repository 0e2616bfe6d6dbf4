"""Guarding folders while submissions run: :class:`Guard` takes checksums (and, for files up to
:data:`KEEP_BYTES`, the bytes) of every file under a folder, and after a run puts back what a
notebook changed or deleted and says what it found; :func:`package_files` reads a package
(``course_utils``) into memory, for the pristine copy each graded kernel gets.
"""

import hashlib
import os
import shutil
from pathlib import Path

from .submissions import SKIP_DIRS

KEEP_BYTES = 20 * 2**20  # files up to this size can be put back if a notebook changes them


def _digest(data):
    return hashlib.sha256(data).hexdigest()


class Guard:
    """Checksums (and, for files up to 20 MiB, the bytes) of every file under a folder.

    ``check()`` compares the folder with the snapshot, puts back what changed or went missing,
    removes new files where ``remove_new(rel)`` says so, and describes what it did.
    """

    def __init__(self, folder, label, *, skip=(), remove_new=lambda rel: False):
        self.folder, self.label = Path(folder), label
        self.skip = [Path(s).resolve() for s in skip]
        self.remove_new = remove_new
        self.files = {rel: self._read(path) for rel, path in self._walk()}

    def _walk(self):
        for here, dirs, names in os.walk(self.folder):
            here = Path(here)
            dirs[:] = sorted(
                d
                for d in dirs
                if d not in SKIP_DIRS
                and not d.endswith(".egg-info")
                and not (here == self.folder and d.startswith("."))
                and (here / d).resolve() not in self.skip
            )
            for name in names:
                path = here / name
                if not path.is_symlink() and path.is_file():
                    yield path.relative_to(self.folder).as_posix(), path

    @staticmethod
    def _read(path):
        data = path.read_bytes()
        return _digest(data), (data if len(data) <= KEEP_BYTES else None)

    def check(self):
        """Return descriptions of what changed since the snapshot (after putting it back)."""
        said = []
        now = dict(self._walk())
        for rel, (digest, data) in self.files.items():
            path = self.folder / rel
            if rel in now:
                try:
                    same = _digest(path.read_bytes()) == digest
                except OSError:
                    same = False
                if same:
                    continue
                what = "changed"
            else:
                what = "deleted"
            if data is None:
                said.append(f"{what} {self.label}/{rel} (too large to put back)")
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink() or path.is_dir():
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
            path.write_bytes(data)
            said.append(f"{what} {self.label}/{rel} (put back)")
        for rel in sorted(set(now) - set(self.files)):
            if self.remove_new(rel):
                (self.folder / rel).unlink(missing_ok=True)
                said.append(f"added {self.label}/{rel} (removed)")
            else:
                said.append(f"added {self.label}/{rel} (left in place)")
        return said


def package_files(folder, prefix=""):
    """Return ``{prefix/relative path: bytes}`` of the package at ``folder`` (no caches)."""
    folder = Path(folder)
    return {
        f"{prefix}{p.relative_to(folder).as_posix()}": p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }
