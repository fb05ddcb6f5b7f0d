"""Durable file operations (fsync, atomic replace) and the translation of OS and Arrow errors
into StoreError, with the path and what to do."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa

from ilrs_ops.errors import StoreError

#: Temp files of an atomic write: hidden from readers (pyarrow, DuckDB and Polars skip dot files
#: or do not match the suffix) and removed by recovery.
TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"

_ADVICE = {
    errno.ENOSPC: "the disk is full; free space on it (or move the store) and retry",
    errno.EDQUOT: "the disk quota is exhausted; raise the quota or free space and retry",
    errno.EACCES: "permission denied; make it writable by the user running ilrs-ops",
    errno.EPERM: "operation not permitted; check ownership and permissions of the store",
    errno.EROFS: "the file system is read-only; remount it read-write or move the store",
    errno.EIO: "I/O error from the disk; check the disk and the kernel log",
    errno.ENOENT: "it does not exist; check the store location",
}


def describe(exc: OSError) -> str:
    """What went wrong and what to do, for an OSError."""
    advice = _ADVICE.get(exc.errno) if exc.errno is not None else None
    return advice or f"{exc.strerror or exc}; check the disk and the store's permissions"


@contextlib.contextmanager
def translate(action: str, path: Path | str) -> Iterator[None]:
    """Turn OSError and pyarrow errors raised inside into StoreError naming ``path``."""
    try:
        yield
    except StoreError:
        raise
    except OSError as exc:
        raise StoreError(f"cannot {action} {path}: {describe(exc)}", str(path)) from exc
    except pa.ArrowException as exc:
        raise StoreError(
            f"cannot {action} {path}: the file is corrupt or not what the store wrote ({exc}); "
            "move it out of the store and retry",
            str(path),
        ) from exc


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (created, renamed, deleted files) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    """``mkdir -p`` whose new directories survive a crash: each parent is fsynced after."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir()
        fsync_dir(d.parent)


def temp_path(final: Path) -> Path:
    return final.with_name(f"{TEMP_PREFIX}{final.name}{TEMP_SUFFIX}")


def is_temp(path: Path) -> bool:
    return path.name.startswith(TEMP_PREFIX) and path.name.endswith(TEMP_SUFFIX)


def write_atomic(final: Path, write: Callable[[object], None], *, sync_dir: bool = True) -> None:
    """Write ``final`` via a temp file in the same directory: write, fsync, rename, and (unless
    the caller syncs the directory itself, once for many files) fsync the directory. A reader
    sees the old file or the complete new one, never a part."""
    tmp = temp_path(final)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if sync_dir:
        fsync_dir(final.parent)
