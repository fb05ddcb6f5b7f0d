"""Signal models of simulated channels, in engineering units, and their conversion to raw counts.

Each profile field gets one Channel; its ``sim:`` block names the model (docs/profiles.md).
Models are vectorised over a batch of packet times and keep the little state they need
(random walks, counters, quakes and solar particle events in progress) between batches.
"""

from __future__ import annotations

import numpy as np

from ilrs_ops.profiles import FieldSpec, SimSpec, calibrate
from ilrs_ops.sim._environment import Environment

NS = 1_000_000_000


class Channel:
    """Makes the values of one field for a batch of packet times."""

    def __init__(self, field: FieldSpec, env: Environment, rng: np.random.Generator) -> None:
        self.field = field
        self.spec = field.sim or default_spec(field)
        self.env = env
        self.rng = rng
        self.count = field.count or 1
        self._walk: float | None = None
        self._counter = 0
        self._episodes: list[tuple[float, float]] = []  # (start s, strength) of quakes / SPEs
        self._covered_s = -np.inf  # episodes are drawn up to this time

    def generate(self, t_ns: np.ndarray) -> np.ndarray:
        """Engineering values, shape (n,) for scalars or (n, count) for arrays; the octets
        (n, length) of a string, bytes or wide integer field."""
        n = t_ns.shape[0]
        s = self.spec
        if self.field.is_octets:
            return self._octets(n)
        match s.model:
            case "constant":
                v = np.full(n, float(s.value or 0.0))
            case "diurnal":
                v = self._diurnal(t_ns)
            case "battery":
                soc = self.env.state_of_charge(t_ns)
                v = float(s.min or 0.0) + (float(s.max or 0.0) - float(s.min or 0.0)) * soc
            case "random_walk":
                v = self._random_walk(n)
            case "counter":
                v = self._count(n)
            case "cycle":
                v = self._cycle(t_ns)
            case "seismic":
                return self._seismic(t_ns)
            case "radiation":
                v = self._radiation(t_ns)
        if self.field.count is not None:
            v = np.repeat(v[:, None], self.count, axis=1)
        if s.noise:
            v = v + self.rng.normal(0.0, s.noise, size=v.shape)
        return v

    def _octets(self, n: int) -> np.ndarray:
        """``constant``: a string's text, NUL-padded (other fields: zeros); ``random``: random
        octets in every packet."""
        size = self.field.width // 8
        if self.spec.model == "random":
            return self.rng.integers(0, 256, size=(n, size), dtype=np.uint8)
        text = (self.spec.text or "").encode(self.field.encoding)[:size]
        row = np.zeros(size, np.uint8)
        row[: len(text)] = np.frombuffer(text, np.uint8)
        return np.repeat(row[None, :], n, axis=0)

    def _diurnal(self, t_ns: np.ndarray) -> np.ndarray:
        day, night = float(self.spec.day or 0.0), float(self.spec.night or 0.0)
        if self.field.enum is not None:
            return np.where(self.env.sun(t_ns, self.spec.lag_h) > 0, day, night)
        # Radiative balance: surface temperature follows the fourth root of insolation.
        sun = self.env.sun(t_ns, self.spec.lag_h) ** 0.25
        return night + (day - night) * sun

    def _random_walk(self, n: int) -> np.ndarray:
        s = self.spec
        lo, hi = float(s.min or 0.0), float(s.max or 0.0)
        start = float(s.value or 0.0) if self._walk is None else self._walk
        steps = self.rng.normal(0.0, float(s.step or 0.0), size=n)
        out = np.empty(n)
        v = start
        for i in range(n):  # reflecting walk; batches are small (one per publish)
            v = v + steps[i]
            if v > hi:
                v = 2 * hi - v
            if v < lo:
                v = 2 * lo - v
            out[i] = v
        self._walk = v
        return out

    def _count(self, n: int) -> np.ndarray:
        step = 1 if self.spec.step is None else round(self.spec.step)
        modulo = 1 << self.field.width if self.field.base == "u" else 1 << (self.field.width - 1)
        out = (self._counter + step * np.arange(n, dtype=np.int64)) % modulo
        self._counter = int((self._counter + step * n) % modulo)
        return out.astype(np.float64)

    def _cycle(self, t_ns: np.ndarray) -> np.ndarray:
        values = [self._enum_value(v) for v in self.spec.values or [0.0]]
        period = float(self.spec.period_s or 1.0)
        idx = ((t_ns - self.env.epoch_ns) / (period * NS)).astype(np.int64) % len(values)
        return np.asarray(values, dtype=np.float64)[idx]

    def _enum_value(self, v: float | str) -> float:
        if isinstance(v, str):  # a label of a range stands for the lowest value it covers
            states = self.field.enumeration
            code = states.code(v) if states is not None else None
            return float(code if code is not None else 0)
        return float(v)

    def _draw_episodes(self, t0_s: float, t1_s: float, keep_s: float) -> None:
        """Poisson arrivals of quakes or particle events between t0_s and t1_s, each with a
        strength in [0.3, 1] of the largest."""
        rate = float(self.spec.rate_per_h or 0.0) / 3600.0
        start = max(t0_s, self._covered_s)
        if rate > 0 and t1_s > start:
            k = self.rng.poisson(rate * (t1_s - start))
            for onset in np.sort(self.rng.uniform(start, t1_s, size=k)):
                self._episodes.append((float(onset), float(self.rng.uniform(0.3, 1.0))))
        self._covered_s = max(self._covered_s, t1_s)
        self._episodes = [(t, p) for t, p in self._episodes if t > t0_s - keep_s]

    def _seismic(self, t_ns: np.ndarray) -> np.ndarray:
        s = self.spec
        rate_hz = self.field.sample_rate_hz or float(self.count)
        t_s = (t_ns[:, None] - self.env.epoch_ns) / NS + np.arange(self.count) / rate_hz
        out = self.rng.normal(0.0, float(s.amplitude or 0.0), size=t_s.shape)
        decay = float(s.duration_s or 60.0)
        if t_s.size:
            self._draw_episodes(float(t_s.min()), float(t_s.max()), 10 * decay)
        for onset, strength in self._episodes:
            peak = strength * float(s.max or 0.0)
            dt = t_s - onset
            # Moonquakes ring for a long time in the dry, scattering regolith: emergent rise
            # over a tenth of the decay time, then an exponential coda; ~1 Hz carrier.
            rise = np.clip(dt / (0.1 * decay), 0.0, 1.0)
            env = np.where(dt >= 0, rise * np.exp(-np.maximum(dt, 0.0) / decay), 0.0)
            out += peak * env * np.sin(2.0 * np.pi * 1.1 * dt)
        return out

    def _radiation(self, t_ns: np.ndarray) -> np.ndarray:
        s = self.spec
        base = float(s.value or 0.0)
        t_s = (t_ns - self.env.epoch_ns) / NS
        decay = float(s.duration_s or 3600.0)
        if t_s.size:
            self._draw_episodes(float(t_s.min()), float(t_s.max()), 10 * decay)
        v = np.full(t_s.shape, base)
        rise = base * (
            float(s.amplitude or 10.0) - 1.0
        )  # the largest event multiplies by amplitude
        for onset, strength in self._episodes:
            dt = t_s - onset
            v += np.where(dt >= 0, strength * rise * np.exp(-np.maximum(dt, 0.0) / decay), 0.0)
        return v


def default_spec(field: FieldSpec) -> SimSpec:
    """A quiet nominal value for a field without a ``sim:`` block: mid-limits, or raw zero
    (an empty string, zero octets)."""
    if field.is_octets:
        return SimSpec(model="constant")
    lim = field.limits
    for pair in (lim.yellow, lim.red) if lim else ():
        if pair and None not in pair:
            lo, hi = pair
            return SimSpec(model="constant", value=(lo + hi) / 2, noise=abs(hi - lo) / 100)
    if field.enumeration is not None:
        return SimSpec(model="constant", value=float(field.enumeration.lowest))
    return SimSpec(model="constant", value=float(calibrate(field.calibration, np.zeros(1))[0]))
