"""Atomic file writes, for every file ilrs-ops replaces in place (Parquet segments, checkpoints,
tokens, profiles): a reader sees the old file or the complete new one, never a part."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

#: Temp files of an atomic write: hidden from readers (pyarrow, DuckDB and Polars skip dot files;
#: the profile loader reads only .yaml/.yml) and removed by the store's recovery.
__all__ = ["TEMP_PREFIX", "TEMP_SUFFIX", "fsync_dir", "is_temp", "temp_path", "write_atomic"]

TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"


def temp_path(final: Path) -> Path:
    return final.with_name(f"{TEMP_PREFIX}{final.name}{TEMP_SUFFIX}")


def is_temp(path: Path) -> bool:
    return path.name.startswith(TEMP_PREFIX) and path.name.endswith(TEMP_SUFFIX)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (created, renamed, deleted files) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    final: Path,
    write: Callable[[object], None],
    *,
    sync_dir: bool = True,
    mode: int | None = None,
) -> None:
    """Write ``final`` via a temp file in the same directory: write, fsync, (chmod,) rename, and
    (unless the caller syncs the directory itself, once for many files) fsync the directory."""
    tmp = temp_path(final)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if sync_dir:
        fsync_dir(final.parent)
