"""Content-addressed artifact store: ``store/<sha[:2]>/<sha>/`` holds one artifact, named by the upload's sha256.

Entries arrive fully built in a staging directory on the same filesystem and are
renamed into place, so the store never holds a half-written artifact.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


class Store:
    def __init__(self, root: Path, tmp: Path):
        self.root, self.tmp = root, tmp
        root.mkdir(parents=True, exist_ok=True)
        tmp.mkdir(parents=True, exist_ok=True)

    def dir_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def staging(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="stage-", dir=self.tmp))

    def temp_file(self) -> tuple[int, Path]:
        fd, name = tempfile.mkstemp(prefix="upload-", dir=self.tmp)
        return fd, Path(name)

    def commit(self, staged: Path, sha256: str) -> Path:
        final = self.dir_for(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # a crash between rename and DB insert left it: the DB is the truth
            shutil.rmtree(final)
        os.replace(staged, final)
        return final

    def remove(self, sha256: str) -> None:
        shutil.rmtree(self.dir_for(sha256), ignore_errors=True)
        try:
            self.dir_for(sha256).parent.rmdir()
        except OSError:
            pass

    def shas(self) -> set[str]:
        return {p.name for p in self.root.glob("*/*") if p.is_dir()}

    def sweep(self, keep: set[str]) -> list[str]:
        """Remove staging leftovers and store entries with no DB row (a crash mid-ingest)."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        orphans = sorted(self.shas() - keep)
        for sha in orphans:
            self.remove(sha)
        return orphans

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free
