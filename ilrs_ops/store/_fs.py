"""Durable file operations (fsync, atomic replace) and the translation of OS and Arrow errors
into StoreError, with the path and what to do."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from ilrs_ops.errors import StoreError
from ilrs_ops.files import TEMP_PREFIX, TEMP_SUFFIX, fsync_dir, is_temp, temp_path, write_atomic

__all__ = [  # the atomic-write pieces are shared with the console; re-exported for the store
    "TEMP_PREFIX", "TEMP_SUFFIX", "describe", "fsync_dir", "is_temp", "make_dirs",
    "read_if_any", "temp_path", "translate", "write_atomic",
]  # fmt: skip


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


def read_if_any(action: str, path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist (StoreError for anything else)."""
    try:
        with translate(action, path):
            return path.read_bytes()
    except StoreError as exc:
        if isinstance(exc.__cause__, FileNotFoundError):
            return None
        raise


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
