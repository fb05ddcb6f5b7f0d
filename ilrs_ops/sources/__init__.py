"""Where packets come from: the live broker (the one aiomqtt adapter, with manual acks) and
recorded stores, behind one Source interface of message batches."""

from ilrs_ops import lazy
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
    "raise_if_stopping",
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
        "raise_if_stopping",
    ),
    "ilrs_ops.sources._mqtt",
)


__getattr__ = lazy.attributes(__name__, _LAZY)
