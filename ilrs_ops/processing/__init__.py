"""Processing: one Lane per instrument drives the Processor (``pipelines`` kernels) for every way
in; recovery re-runs the WAL through it, and History joins sealed reads with the live tail."""

from ilrs_ops.processing._history import ROLLUPS_PER_BUCKET, History, Source
from ilrs_ops.processing._lane import MERGE_BATCHES, Lane, merge
from ilrs_ops.processing._processor import (
    DEDUPE_WINDOW,
    Processed,
    Processor,
    ProcessState,
    packet_time_ns,
    reject_detail,
    split_batch,
)
from ilrs_ops.processing._recover import (
    checkpoint_state,
    recover,
    recover_lane,
    seal,
    seal_by_replay,
)

__all__ = [
    "DEDUPE_WINDOW",
    "MERGE_BATCHES",
    "ROLLUPS_PER_BUCKET",
    "History",
    "Lane",
    "ProcessState",
    "Processed",
    "Processor",
    "Source",
    "checkpoint_state",
    "merge",
    "packet_time_ns",
    "recover",
    "recover_lane",
    "reject_detail",
    "seal",
    "seal_by_replay",
    "split_batch",
]
