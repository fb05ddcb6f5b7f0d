"""Re-running WAL batches through the processing chain (recovery and live queries), and removing
what a crash in the middle of an atomic write leaves behind."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa

from ilrs_ops.process import Processed, Processor
from ilrs_ops.store._fs import is_temp


def replay(processor: Processor, batches: Iterable[pa.RecordBatch]) -> list[Processed]:
    """Process WAL batches as the ingestor did: one ``process`` call per batch (per run of one
    topic within it), so the output is what the ingestor computed from the same state."""
    out: list[Processed] = []
    for batch in batches:
        if batch.num_rows == 0:
            continue
        recv = batch.column("recv").cast(pa.int64()).to_numpy()
        payloads = batch.column("payload").to_pylist()
        topics = batch.column("topic").to_pylist()
        start = 0
        for end in [
            *np.flatnonzero(np.array(topics[1:]) != np.array(topics[:-1])) + 1,
            len(topics),
        ]:
            out.append(processor.process(payloads[start:end], recv[start:end], topics[start]))
            start = int(end)
    return out


def remove_temp_files(folders: Iterable[Path]) -> list[Path]:
    """Delete leftover temp files (``.name.tmp``) anywhere under ``folders``; returns them."""
    removed: list[Path] = []
    for folder in folders:
        for dirpath, _, files in os.walk(folder):
            for name in files:
                path = Path(dirpath) / name
                if is_temp(path):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    removed.append(path)
    return removed
