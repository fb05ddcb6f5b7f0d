"""Rates from counters, as Prometheus makes them: the console samples each counter of the
ingestors' status and metrics documents when a document arrives, and a rate is the increase
over a window divided by the window (a counter that goes down was reset: an ingest restart).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

#: The longest window a rate may be asked over; samples older than it are let go.
MAX_WINDOW_S = 300.0
#: A rate over less time than this (the console has just started) is not told: it is noise.
MIN_SPAN_S = 1.0

#: A counter's name: what it is of, then its name, e.g. ("instrument", "sup-rover-1", "packets").
Key = tuple[str, ...]


@dataclass(eq=False)
class Counters:
    """Samples ``(t, value)`` per counter, oldest first, kept for ``keep_s``.

    A document is published when its counters change (status) or on a fixed cadence
    (metrics), so between two samples a counter holds the earlier value: the increase over
    [now - window, now] is read from the last sample at or before the window's start.
    """

    keep_s: float = MAX_WINDOW_S
    max_samples: int = 4096  # per counter: a flood of documents cannot grow it without bound
    _series: dict[Key, deque[tuple[float, float]]] = field(default_factory=dict)

    def observe(self, key: Key, t: float, value: object) -> None:
        """Sample counter ``key`` at ``t`` (s); a value that is not a number is ignored."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = deque(maxlen=self.max_samples)
        series.append((t, float(value)))
        # Keep one sample at or before the horizon: it is the base of the longest window.
        while len(series) > 1 and series[1][0] <= t - self.keep_s:
            series.popleft()

    def forget(self, which: Callable[[Key], bool]) -> None:
        """Drop the counters whose key ``which`` picks (a cleared retained document)."""
        for key in [k for k in self._series if which(k)]:
            del self._series[key]

    def rate(self, key: Key, now: float, window_s: float) -> float | None:
        """Per second over [now - window_s, now]; None for a counter never seen, or seen for
        less than MIN_SPAN_S so far."""
        series = self._series.get(key)
        if not series:
            return None
        start = now - window_s
        base = 0
        for k, (t, _) in enumerate(series):
            if t > start:
                break
            base = k
        t0 = series[base][0]
        span = window_s if t0 <= start else now - t0
        if span < MIN_SPAN_S:
            return None
        increase = 0.0
        previous = series[base][1]
        for t, value in list(series)[base + 1 :]:
            if t > now:
                break
            increase += value - previous if value >= previous else value  # a reset
            previous = value
        return increase / span
