"""Where packets come from: the live broker (the one aiomqtt adapter, with manual acks) and
recorded stores, behind one Source interface of message batches."""

import importlib
from typing import Any

from ilrs_ops.sources._source import Message, Source
from ilrs_ops.sources._store import StoreSource

__all__ = [
    "HOLD_HIGH",
    "HOLD_LOW",
    "PROTOCOLS",
    "RECEIVE_MAXIMUM",
    "Message",
    "Protocol",
    "ReadGate",
    "Source",
    "StoreSource",
    "Version",
    "ack",
    "connect",
    "make_client",
    "open_client",
    "publish",
]


#: Names loaded on first use: the MQTT adapter pulls aiomqtt and paho,
#: which file imports and store reads never use.
_LAZY = dict.fromkeys(
    (
        "HOLD_HIGH",
        "HOLD_LOW",
        "PROTOCOLS",
        "RECEIVE_MAXIMUM",
        "Protocol",
        "ReadGate",
        "Version",
        "ack",
        "connect",
        "make_client",
        "open_client",
        "publish",
    ),
    "ilrs_ops.sources._mqtt",
)


def __getattr__(name: str) -> Any:
    """``name`` from its module, imported on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
