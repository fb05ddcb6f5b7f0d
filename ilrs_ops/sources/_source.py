"""The one Source interface: an async iterator of message batches, whatever is behind it (a
store's sealed raw table, a recording; the live broker is ingest's own loop over ``_mqtt``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import NamedTuple, Protocol, runtime_checkable


class Message(NamedTuple):
    """One MQTT message as a source gives it: ``recv_ns`` is its time on the source's timeline
    (for a store: the packet time of its last packet, the station's clock)."""

    recv_ns: int
    topic: str
    payload: bytes


@runtime_checkable
class Source(Protocol):
    """An async iterator of batches of messages, in the order they are to be delivered (per
    topic in arrival order); ``total`` is the number of messages it will give, for progress."""

    total: int

    def __aiter__(self) -> AsyncIterator[list[Message]]: ...
