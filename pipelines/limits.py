"""Limit checking: a state per sample (nominal, yellow, red, invalid) and the state transitions.

A channel's limits are one or more *sets*: set 0 is the default, set ``j + 1`` is the profile's
``when`` entry ``j``, in force while channel ``context_channels[j]`` lies in
[``context_values[j]``, ``context_hi[j]``] (both inclusive; equal for a context on one value, a
range for an enum label that covers a range of raw values). Each set has ``yellow_lo,
yellow_hi, red_lo, red_hi``:

- ``value < red_lo`` or ``value > red_hi`` -> RED; else ``value < yellow_lo`` or
  ``value > yellow_hi`` -> YELLOW; else NOMINAL. Bounds are inclusive-nominal: a value equal to
  a bound is inside it. NaN -> INVALID (-1).
- An open side (``null`` in the profile, or a colour the profile does not give) is -inf / +inf.
- A ``when`` entry replaces only the colours it gives; a colour it omits comes from the default
  set. (``when: [{..., yellow: [-60, 80]}]`` keeps the default red limits.) The profile compiler
  (``ilrs_ops.profiles``) applies this rule when it builds the plan; the kernels just read bounds.

Which set applies to sample ``i`` is the *context index* ``ctx[i]``: the index ``j`` of the
first ``when`` entry whose channel lies in its range at that sample, or -1 for none (default
set; a NaN context value matches nothing). ``select_context`` computes it; the kernel reads set
``ctx[i] + 1``.

Array channels get a state per element; ``channel_states`` folds them into one state per sample
(the worst element; INVALID only when every element is NaN) before ``transitions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numba import njit

#: Limit states, ordered so that the worst element of an array is the maximum.
INVALID, NOMINAL, YELLOW, RED = -1, 0, 1, 2
STATE_NAMES = {INVALID: "invalid", NOMINAL: "nominal", YELLOW: "yellow", RED: "red"}


@dataclass(frozen=True, eq=False)
class LimitPlan:
    """The limit sets of one channel: float64 bounds per set (set 0 the default, then one per
    ``when`` entry), and for each ``when`` entry its context channel and the range of that
    channel it matches: [``context_values``, ``context_hi``], ``context_hi`` the same as
    ``context_values`` (an equality) when not given.
    """

    yellow_lo: np.ndarray  # float64[n_sets]
    yellow_hi: np.ndarray
    red_lo: np.ndarray
    red_hi: np.ndarray
    context_channels: tuple[str, ...] = ()  # [n_sets - 1]
    context_values: np.ndarray = field(default_factory=lambda: np.empty(0))  # float64[n_sets-1]
    context_hi: np.ndarray | None = None  # float64[n_sets - 1]; None: context_values

    def __post_init__(self) -> None:
        if self.context_hi is None:
            object.__setattr__(self, "context_hi", self.context_values)
        for name in ("yellow_lo", "yellow_hi", "red_lo", "red_hi", "context_values", "context_hi"):
            a = np.array(getattr(self, name), np.float64, order="C", ndmin=1)
            a.flags.writeable = False  # a plan is shared by every batch; nobody changes it
            object.__setattr__(self, name, a)
        object.__setattr__(self, "context_channels", tuple(self.context_channels))
        n = self.yellow_lo.shape[0]
        if n == 0 or any(getattr(self, k).shape != (n,) for k in ("yellow_hi", "red_lo", "red_hi")):
            raise ValueError("yellow_lo, yellow_hi, red_lo, red_hi: one value per set, >= 1 set")
        if len(self.context_channels) != n - 1 or self.context_values.shape != (n - 1,):
            raise ValueError(
                f"{n} limit sets need {n - 1} context channel(s) and value(s); got "
                f"{len(self.context_channels)} and {self.context_values.shape[0]}"
            )
        assert self.context_hi is not None
        if self.context_hi.shape != (n - 1,):
            raise ValueError(
                f"context_hi: {n - 1} value(s), one per context, not {self.context_hi.shape}"
            )
        if (self.context_hi < self.context_values).any():
            raise ValueError("a context range [lo, hi] must have lo <= hi")
        bounds = np.stack([self.yellow_lo, self.yellow_hi, self.red_lo, self.red_hi])
        if np.isnan(bounds).any():
            raise ValueError("limit bounds must not be NaN; use -inf/+inf for an open side")

    @property
    def n_sets(self) -> int:
        return int(self.yellow_lo.shape[0])

    def sets(self) -> list[tuple[float, float, float, float]]:
        """Each set's bounds as (yellow_lo, yellow_hi, red_lo, red_hi), default set first."""
        return list(
            zip(
                self.yellow_lo.tolist(),
                self.yellow_hi.tolist(),
                self.red_lo.tolist(),
                self.red_hi.tolist(),
                strict=True,
            )
        )

    @classmethod
    def single(
        cls,
        yellow: tuple[float | None, float | None] | None = None,
        red: tuple[float | None, float | None] | None = None,
    ) -> LimitPlan:
        """One default set, no context; ``None`` leaves a colour or a side open."""
        (ylo, yhi), (rlo, rhi) = _bounds(yellow), _bounds(red)
        return cls(np.array([ylo]), np.array([yhi]), np.array([rlo]), np.array([rhi]))


def _bounds(r: tuple[float | None, float | None] | None) -> tuple[float, float]:
    lo, hi = r if r is not None else (None, None)
    return (-np.inf if lo is None else float(lo), np.inf if hi is None else float(hi))


class Transitions(NamedTuple):
    """State changes of one channel in one batch; ``last`` is the state to carry to the next."""

    index: np.ndarray  # int64: the sample where the new state starts
    from_state: np.ndarray  # int8
    to_state: np.ndarray  # int8
    last: int


@njit(cache=True, nogil=True)
def _state_kernel(
    values: np.ndarray,
    ctx: np.ndarray,
    yellow_lo: np.ndarray,
    yellow_hi: np.ndarray,
    red_lo: np.ndarray,
    red_hi: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out[i, j]`` = state of ``values[i, j]`` under set ``ctx[i] + 1``."""
    for i in range(values.shape[0]):
        s = ctx[i] + 1
        ylo, yhi, rlo, rhi = yellow_lo[s], yellow_hi[s], red_lo[s], red_hi[s]
        for j in range(values.shape[1]):
            v = values[i, j]
            if np.isnan(v):
                out[i, j] = -1
            elif v < rlo or v > rhi:
                out[i, j] = 2
            elif v < ylo or v > yhi:
                out[i, j] = 1
            else:
                out[i, j] = 0


@njit(cache=True, nogil=True)
def _context_kernel(
    values: np.ndarray, channel: np.ndarray, lo: np.ndarray, hi: np.ndarray, out: np.ndarray
) -> None:
    """``out[i]`` = the first ``j`` with ``lo[j] <= values[channel[j], i] <= hi[j]``, else -1
    (NaN lies in no range)."""
    for i in range(out.shape[0]):
        out[i] = -1
        for j in range(lo.shape[0]):
            v = values[channel[j], i]
            if lo[j] <= v and v <= hi[j]:
                out[i] = j
                break


@njit(cache=True, nogil=True)
def _count_transitions(states: np.ndarray, prev: int) -> int:
    n, p = 0, prev
    for i in range(states.shape[0]):
        if states[i] != p:
            n += 1
            p = states[i]
    return n


@njit(cache=True, nogil=True)
def _transition_kernel(
    states: np.ndarray, prev: int, index: np.ndarray, from_state: np.ndarray, to_state: np.ndarray
) -> None:
    k, p = 0, prev
    for i in range(states.shape[0]):
        s = states[i]
        if s != p:
            index[k] = i
            from_state[k] = p
            to_state[k] = s
            k += 1
            p = s


def select_context(plan: LimitPlan, contexts: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """The context index per sample (int64[n]): the first ``when`` entry whose channel lies in
    its range, -1 for none. ``contexts`` maps each context channel to its n values (engineering
    values; enum channels as their codes); NaN matches nothing.
    """
    names = list(dict.fromkeys(plan.context_channels))
    values = np.empty((len(names), n), np.float64)
    for k, name in enumerate(names):
        if name not in contexts:
            raise KeyError(f"the limits need the values of context channel {name!r}")
        v = np.asarray(contexts[name])
        if v.shape != (n,):
            raise ValueError(f"context channel {name!r}: {v.shape} values, expected ({n},)")
        values[k] = v
    channel = np.array([names.index(c) for c in plan.context_channels], np.int64)
    ctx = np.empty(n, np.int64)
    _context_kernel(values, channel, plan.context_values, plan.context_hi, ctx)
    return ctx


def limit_states(
    values: np.ndarray, plan: LimitPlan, context: np.ndarray | None = None
) -> np.ndarray:
    """The state of every value (int8, same shape as ``values``: 1-D, or 2-D for arrays).

    ``context`` is the context index per sample (see ``select_context``); it may be omitted only
    when the plan has no ``when`` entries.
    """
    if not isinstance(values, np.ndarray) or values.ndim not in (1, 2):
        raise TypeError("values must be a 1-D or 2-D numpy array")
    if values.dtype.kind not in "iufb":
        raise TypeError(f"values must be numeric, not {values.dtype}")
    if not isinstance(plan, LimitPlan):
        raise TypeError(f"plan must be a LimitPlan, not {type(plan).__name__}")
    n = values.shape[0]
    if context is None:
        if plan.n_sets > 1:
            raise ValueError("these limits depend on a context channel; pass context=")
        ctx = np.full(n, -1, np.int64)
    else:
        ctx = np.asarray(context)
        if ctx.shape != (n,) or not (ctx.dtype.kind in "iu" or n == 0):
            raise ValueError(f"context must be {n} integers (one per sample), not {ctx.shape}")
        ctx = np.ascontiguousarray(ctx, np.int64)
        if n and (ctx.min() < -1 or ctx.max() > plan.n_sets - 2):
            raise ValueError(f"context indices must lie in -1..{plan.n_sets - 2}")
    x = np.ascontiguousarray(values if values.dtype in _FLOATS else values.astype(np.float64))
    x2 = x.reshape(n, 1 if x.ndim == 1 else x.shape[1])
    out = np.empty(x2.shape, np.int8)
    _state_kernel(x2, ctx, plan.yellow_lo, plan.yellow_hi, plan.red_lo, plan.red_hi, out)
    return out.reshape(values.shape)


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def channel_states(states: np.ndarray) -> np.ndarray:
    """One state per sample: the worst element of each row of a 2-D state array (INVALID only
    when every element is NaN); a 1-D array is returned as it is."""
    states = np.asarray(states)
    if states.dtype != np.int8 or states.ndim not in (1, 2):
        raise TypeError("states must be a 1-D or 2-D int8 array from limit_states")
    if states.ndim == 1:
        return states
    if states.shape[1] == 0:
        raise ValueError("an array channel needs at least one element")
    return states.max(axis=1)


def transitions(states: np.ndarray, prev: int = NOMINAL) -> Transitions:
    """Where the state changes in a 1-D state sequence, starting from ``prev`` (the state carried
    from the previous batch; NOMINAL for a channel with no history, so a channel that starts red
    raises one transition and one that starts nominal raises none)."""
    states = np.asarray(states)
    if states.ndim != 1 or states.dtype != np.int8:
        raise TypeError("states must be a 1-D int8 array (use channel_states for arrays)")
    if prev not in STATE_NAMES:
        raise ValueError(f"prev state {prev} is not one of {sorted(STATE_NAMES)}")
    states = np.ascontiguousarray(states)
    k = _count_transitions(states, prev)
    index = np.empty(k, np.int64)
    from_state = np.empty(k, np.int8)
    to_state = np.empty(k, np.int8)
    _transition_kernel(states, prev, index, from_state, to_state)
    last = int(states[-1]) if states.shape[0] else int(prev)
    return Transitions(index, from_state, to_state, last)
