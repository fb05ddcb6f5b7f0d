"""Recordings: import packet files, replay stores onto MQTT or straight through the pipelines."""

from ilrs_ops import lazy
from ilrs_ops.replay._import import CHUNK_OCTETS, ImportSummary, import_packets
from ilrs_ops.replay._recorder import Recorder
from ilrs_ops.replay._recording import (
    META,
    Recording,
    RecordingError,
    check_name,
    create_recording,
    list_recordings,
    read_recording,
    recordings_dir,
    resolve_store,
)

__all__ = [
    "CHUNK_OCTETS",
    "META",
    "ImportSummary",
    "Published",
    "Recorder",
    "Recording",
    "RecordingError",
    "ReplayControl",
    "check_name",
    "create_recording",
    "import_packets",
    "list_recordings",
    "publish",
    "read_recording",
    "recordings_dir",
    "replay_direct",
    "replay_into",
    "replay_mqtt",
    "replay_root",
    "resolve_store",
]


#: Names loaded on first use: replaying onto MQTT pulls aiomqtt, asyncio
#: and the ingestor, which `ilrs-ops import` never uses.
_LAZY = dict.fromkeys(
    (
        "Published",
        "ReplayControl",
        "publish",
        "replay_direct",
        "replay_into",
        "replay_mqtt",
        "replay_root",
    ),
    "ilrs_ops.replay._replay",
)


__getattr__ = lazy.attributes(__name__, _LAZY)
