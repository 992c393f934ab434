"""A folder as an uncompressed tar, streamed block by block: model downloads, tracker files, dataset directories."""

from __future__ import annotations

import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1 << 20
BLOCK = tarfile.BLOCKSIZE


def _header(name: str, size: int, mtime: float, *, is_dir: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = 0 if is_dir else size
    info.mtime = int(mtime)
    info.mode = 0o755 if is_dir else 0o644
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _padding(size: int) -> bytes:
    return b"\0" * ((BLOCK - size % BLOCK) % BLOCK)


def folder_files(folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """The folder's regular files, sorted, with their stat; symlinks are not followed."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if path.is_symlink() or not path.is_file():
                continue
            yield path, path.stat()


def tar_chunks(folder: Path, *, root: str, extra: dict[str, bytes] | None = None) -> Iterator[bytes]:
    """The folder's files under root/ in a tar, then each of `extra` (name -> content) under root/ too."""
    yield _header(root, 0, time.time(), is_dir=True)
    for path, stat in folder_files(folder):
        yield _header(f"{root}/{path.relative_to(folder).as_posix()}", stat.st_size, stat.st_mtime)
        sent = 0
        with open(path, "rb") as f:
            while block := f.read(CHUNK):
                sent += len(block)
                yield block
        if sent != stat.st_size:  # the file changed while being read: stop, rather than send a broken tar
            raise OSError(f"{path} changed while it was being archived.")
        yield _padding(sent)
    for name, content in (extra or {}).items():
        yield _header(f"{root}/{name}", len(content), time.time())
        yield content + _padding(len(content))
    yield b"\0" * (2 * BLOCK)
