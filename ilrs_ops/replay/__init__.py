"""Recordings: import packet files, replay stores onto MQTT or straight through the pipelines."""

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
from ilrs_ops.replay._replay import (
    Published,
    ReplayControl,
    publish,
    replay_direct,
    replay_into,
    replay_mqtt,
    replay_root,
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
