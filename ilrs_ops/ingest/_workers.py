"""Many ingest shards on one host: ``ingest --workers N`` runs shard i/N, for every i < N, in a
process of its own, so one machine uses all its cores. One process is about one core: its
event loop receives, acknowledges and publishes while the kernels run beside it, but Python's
own work in it (Arrow building, per-batch glue) takes turns on one interpreter.

The shards are the ones ``--shard i/N`` makes (an instrument belongs to one shard by a stable
hash); the supervisor only starts them, starts a crashed one again, and stops them together.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import sys
from collections.abc import Callable, Sequence

from ilrs_ops.backoff import Backoff
from ilrs_ops.errors import IlrsError

log = logging.getLogger(__name__)

#: How long a stopping shard may take to seal before it is killed (its WAL is kept: nothing
#: acknowledged is lost, the next start seals it).
STOP_S = 120.0
#: A shard that ran this long before it died starts again without waiting.
HEALTHY_S = 60.0
#: The exit code of a command that refused its input or settings (IlrsError): starting such a
#: shard again would fail again, so the supervisor stops and says so.
REFUSED = 2


class WorkerError(IlrsError):
    """A shard refused to run (bad settings, a profile error): the supervisor stopped."""


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies, even by SIGKILL, so no
    orphan shard keeps the lanes' locks (Linux; elsewhere nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _exit_text(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"


async def _stop(proc: asyncio.subprocess.Process, timeout_s: float) -> None:
    """SIGTERM (a clean stop: seal, exit 0), then SIGKILL after ``timeout_s``."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), timeout_s)
    except TimeoutError:
        log.warning("ingest worker pid %d did not stop in %.0fs; killing it", proc.pid, timeout_s)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def _keep(
    shard: int, shards: int, argv: Sequence[str], stop_s: float, started: Callable[[int, int], None]
) -> None:
    """Run one shard until it stops by itself (exit 0) or the supervisor is cancelled; start
    it again after a crash or a kill, with a backoff while it keeps dying young."""
    loop = asyncio.get_running_loop()
    backoff = Backoff()
    name = f"ingest shard {shard}/{shards}"
    while True:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C reaches the supervisor, which stops each shard
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        began = loop.time()
        started(shard, proc.pid)
        try:
            code = await proc.wait()
        except asyncio.CancelledError:
            await asyncio.shield(_stop(proc, stop_s))
            raise
        if code == 0:
            log.info("%s stopped", name)
            return
        if code == REFUSED:
            raise WorkerError(f"{name} refused to run ({_exit_text(code)}); its error is above")
        if loop.time() - began >= HEALTHY_S:
            backoff.reset()
        await backoff.wait(log, f"{name} (pid {proc.pid}) ended with {_exit_text(code)}")


async def supervise(
    argv: Callable[[int], Sequence[str]],
    workers: int,
    *,
    stop_s: float = STOP_S,
    started: Callable[[int, int], None] = lambda shard, pid: None,
) -> None:
    """Run shards ``0..workers-1`` (``argv(i)`` is shard i's command line) until cancelled or
    all stop by themselves. ``started(shard, pid)`` is told of every start, restarts too. A
    shard that refuses to run stops them all with WorkerError."""
    try:
        async with asyncio.TaskGroup() as tg:
            for i in range(workers):
                tg.create_task(_keep(i, workers, argv(i), stop_s, started), name=f"shard-{i}")
    except* WorkerError as group:
        raise group.exceptions[0] from None
