"""Processing: one Lane per instrument drives the Processor (``pipelines`` kernels) for every way
in; recovery re-runs the WAL through it."""

from ilrs_ops.processing._inspect import FieldView, PacketView, inspect_packet
from ilrs_ops.processing._lane import MERGE_BATCHES, Lane, merge
from ilrs_ops.processing._processor import (
    DEDUPE_WINDOW,
    Processed,
    Processor,
    ProcessState,
    apid_tables,
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
    state_of,
)

__all__ = [
    "DEDUPE_WINDOW",
    "MERGE_BATCHES",
    "FieldView",
    "Lane",
    "PacketView",
    "ProcessState",
    "Processed",
    "Processor",
    "apid_tables",
    "checkpoint_state",
    "inspect_packet",
    "merge",
    "packet_time_ns",
    "recover",
    "recover_lane",
    "reject_detail",
    "seal",
    "seal_by_replay",
    "split_batch",
    "state_of",
]
