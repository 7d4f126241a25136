"""Our own zip extractor (R4): no path tricks, no links or devices, bounded entries and bytes.

The byte cap counts bytes actually written, not the sizes the archive declares,
so a zip bomb stops at the cap whatever its headers say.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

from edgekit.errors import EdgekitError

_CHUNK = 1 << 16


class ArchiveError(EdgekitError):
    def __init__(self, message: str, entry: str | None = None, **details):
        super().__init__("archive_invalid", message,
                         fix="zip the artifact directory with plain files and folders only (edgekit bench --server "
                             "does this for you)",
                         details={"entry": entry, **details})


def safe_members(zf: zipfile.ZipFile, max_entries: int) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    infos = zf.infolist()
    if len(infos) > max_entries:
        raise ArchiveError(f"archive has {len(infos)} entries; at most {max_entries} allowed", count=len(infos))
    seen: set[str] = set()
    out = []
    for info in infos:
        name = info.filename
        if "\\" in name or "\x00" in name:
            raise ArchiveError(f"entry {name!r} has a backslash or NUL in its name", name)
        p = PurePosixPath(name)
        if p.is_absolute() or name.startswith("/") or (p.parts and ":" in p.parts[0]):
            raise ArchiveError(f"entry {name!r} is an absolute path", name)
        if ".." in p.parts:
            raise ArchiveError(f"entry {name!r} climbs out of the archive with '..'", name)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            what = "a symlink" if kind == stat.S_IFLNK else "a link or device file"
            raise ArchiveError(f"entry {name!r} is {what}; only plain files and folders are allowed", name)
        key = str(p)
        if key in seen:
            raise ArchiveError(f"entry {name!r} appears twice", name)
        seen.add(key)
        if info.flag_bits & 0x1:
            raise ArchiveError(f"entry {name!r} is encrypted", name)
        out.append((info, p))
    return out


def extract(zip_path: Path, dest: Path, *, max_entries: int, max_bytes: int) -> list[str]:
    """Extract into ``dest`` (which must exist and be empty); return the file names written."""
    written_total = 0
    names = []
    with zipfile.ZipFile(zip_path) as zf:
        for info, rel in safe_members(zf, max_entries):
            target = dest.joinpath(*rel.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "xb") as out:
                while chunk := src.read(_CHUNK):
                    written_total += len(chunk)
                    if written_total > max_bytes:
                        raise ArchiveError(
                            f"archive expands past {max_bytes:,} bytes (at entry {info.filename!r}); "
                            "a zip bomb or an artifact too large for this server", info.filename,
                            max_bytes=max_bytes)
                    out.write(chunk)
            names.append(str(rel))
    return names
