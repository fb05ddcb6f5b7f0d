"""The write-ahead log: per instrument, numbered segments of raw MQTT messages as Arrow IPC
streams, one record batch per group commit, fsynced before ``append`` returns.

A segment is ``{n:012d}.arrows``: the stream's schema message, then one record batch message
per ``append``. No end-of-stream marker is written: a reader takes every complete batch and
treats whatever follows (a batch torn by a crash, or one still being written) as a torn tail.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from ilrs_ops.errors import InputError, StoreError
from ilrs_ops.schemas import TIME
from ilrs_ops.store._fs import describe, fsync_dir, translate

#: One row per MQTT message, as received.
WAL_SCHEMA = pa.schema([("recv", TIME), ("topic", pa.string()), ("payload", pa.binary())])

SEGMENT_SUFFIX = ".arrows"
_SEGMENT_RE = re.compile(r"^(\d{12})\.arrows$")


def segment_name(number: int) -> str:
    return f"{number:012d}{SEGMENT_SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """The segments in ``directory`` as (number, path), oldest first; [] if there is none."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    found = [(int(m.group(1)), directory / n) for n in names if (m := _SEGMENT_RE.match(n))]
    return sorted(found)


@dataclass(frozen=True, eq=False)
class WalSegment:
    """The complete batches of one segment (from an offset), and how many bytes after them
    were discarded."""

    path: Path
    batches: tuple[pa.RecordBatch, ...]
    discarded_bytes: int  # a torn tail (crash mid-write, or a batch being written right now)
    size: int  # bytes in the file when it was read
    end: int  # offset just after the last complete batch: where a later read goes on

    @property
    def table(self) -> pa.Table:
        return pa.Table.from_batches(self.batches, WAL_SCHEMA)

    @property
    def num_rows(self) -> int:
        return sum(b.num_rows for b in self.batches)


def read_segment(path: Path | str, offset: int = 0) -> WalSegment:
    """Read every complete record batch of a segment, from ``offset`` (0, or the ``end`` of
    an earlier read of the same segment: only what was appended since is read). A truncated
    or torn last batch is not an error: it is left out and counted in ``discarded_bytes``.
    Raises StoreError when the file cannot be read or is not a WAL segment."""
    path = Path(path)
    with translate("read WAL segment", path), path.open("rb") as f:
        f.seek(offset)
        data = f.read()
    reader = pa.BufferReader(pa.py_buffer(data))
    batches: list[pa.RecordBatch] = []
    good = 0
    schema: pa.Schema | None = WAL_SCHEMA if offset else None
    try:
        messages = pa.ipc.MessageReader.open_stream(reader)
        while True:
            message = messages.read_next_message()
            if schema is None:
                schema = pa.ipc.read_schema(message)
                if not schema.equals(WAL_SCHEMA):
                    raise StoreError(
                        f"{path} is not a WAL segment (schema {schema}); move it out of the WAL",
                        str(path),
                    )
            else:
                batch = pa.ipc.read_record_batch(message, schema)
                batch.validate(full=True)
                batches.append(batch)
            good = reader.tell()
    except StopIteration:
        pass
    except (pa.ArrowException, OSError, EOFError):
        pass  # the torn tail: everything from ``good`` on
    return WalSegment(path, tuple(batches), len(data) - good, offset + len(data), offset + good)


def _batch(
    recv_ns: np.ndarray, topics: str | Sequence[str], payloads: Sequence[bytes]
) -> pa.RecordBatch:
    recv = np.asarray(recv_ns)
    n = len(payloads)
    if recv.ndim != 1 or recv.shape[0] != n or (n and recv.dtype.kind not in "iu"):
        raise InputError("recv_ns must be a 1-D integer array with one time per payload")
    if isinstance(topics, str):
        topic = pa.repeat(pa.scalar(topics, pa.string()), n)
    else:
        if len(topics) != n:
            raise InputError(f"{len(topics)} topics for {n} payloads: give one topic per payload")
        topic = pa.array(topics, pa.string())
    return pa.record_batch(
        [pa.array(recv.astype(np.int64, copy=False), TIME), topic, pa.array(payloads, pa.binary())],
        schema=WAL_SCHEMA,
    )


class WalWriter:
    """Appends batches of messages to one instrument's WAL; durable when ``append`` returns.

    After a failed append (disk full, I/O error) the segment is cut back to its last complete
    batch before the next append, so the segment never carries a bad batch in its middle; if that
    cannot be done the next append raises again. Made by ``Store.wal``.
    """

    def __init__(self, directory: Path, first_segment: int) -> None:
        self.directory = directory
        self.segment = first_segment  # where the next append goes
        self.size = 0  # durable bytes of the open segment
        self.batches = 0  # batches in the open segment
        self._fd: int | None = None
        self._dirty = False  # a failed write may have left bytes after ``size``
        self._closed = False
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """The file of the open (or next) segment."""
        return self.directory / segment_name(self.segment)

    def append(
        self, recv_ns: np.ndarray, topics: str | Sequence[str], payloads: Sequence[bytes]
    ) -> int:
        """Write one batch (one row per message) with one fsync; returns its segment number.

        ``topics`` is one topic for all payloads or one per payload. Raises StoreError when the
        batch is not durable (nothing of it counts; acknowledge nothing), InputError for bad input.
        """
        batch = _batch(recv_ns, topics, payloads)
        with self._lock:
            if self._closed:
                raise StoreError(
                    f"the WAL writer of {self.directory} is closed", str(self.directory)
                )
            if self._fd is None:
                self._open()
            assert self._fd is not None
            data = batch.serialize()
            with translate("append to WAL segment", self.path):
                if self._dirty:
                    os.ftruncate(self._fd, self.size)
                    self._dirty = False
                try:
                    self._write_all(data, self.size)
                    os.fsync(self._fd)
                except OSError:
                    self._dirty = True
                    with contextlib.suppress(OSError):
                        os.ftruncate(self._fd, self.size)
                        self._dirty = False
                    raise
            self.size += data.size
            self.batches += 1
            return self.segment

    def rotate(self) -> int | None:
        """Close the open segment and move on to the next number; returns the closed segment's
        number, or None when nothing was appended since the last rotation (nothing to seal)."""
        with self._lock:
            if self._fd is None:
                return None
            closed = self.segment
            self._close_fd()
            self.segment += 1
            return closed

    def close(self) -> None:
        with self._lock:
            self._close_fd()
            self._closed = True

    def __enter__(self) -> WalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write_all(self, data: pa.Buffer, offset: int) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(self._fd, view, offset)  # type: ignore[arg-type]
            if n <= 0:  # a short write that makes no progress: treat as a full disk
                raise OSError(errno.ENOSPC, "no progress writing (disk full?)")
            view, offset = view[n:], offset + n

    def _open(self) -> None:
        path = self.path
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError as exc:
            raise StoreError(
                f"WAL segment {path} already exists: another process writes this instrument's "
                "WAL, or recovery was skipped; stop the other ingestor or recover first "
                "(ilrs_ops.processing.recover)",
                str(path),
            ) from exc
        except OSError as exc:
            raise StoreError(
                f"cannot create WAL segment {path}: {describe(exc)}", str(path)
            ) from exc
        try:
            self._fd = fd
            schema = WAL_SCHEMA.serialize()
            self._write_all(schema, 0)
            os.fsync(fd)
            fsync_dir(self.directory)
        except OSError as exc:
            self._fd = None
            with contextlib.suppress(OSError):
                os.close(fd)
            try:
                path.unlink()
            except OSError:
                self.segment += 1  # leave the stub (read as empty) and never reuse its number
            raise StoreError(
                f"cannot create WAL segment {path}: {describe(exc)}", str(path)
            ) from exc
        self.size = schema.size
        self.batches = 0
        self._dirty = False

    def _close_fd(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if self._dirty:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self.size)
                os.fsync(fd)
        with contextlib.suppress(OSError):
            os.close(fd)
        self.size = self.batches = 0
        self._dirty = False
