"""Where packets come from: the live broker (the one aiomqtt adapter, with manual acks) and
recorded stores, behind one Source interface of message batches."""

from ilrs_ops.sources._mqtt import (
    HOLD_HIGH,
    HOLD_LOW,
    PROTOCOLS,
    RECEIVE_MAXIMUM,
    Protocol,
    ReadGate,
    Version,
    ack,
    connect,
    make_client,
    open_client,
    publish,
)
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
