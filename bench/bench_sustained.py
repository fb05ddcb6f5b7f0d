"""Sustained seal: does sealing keep up with ingest at a fixed offered rate? (issue 14, P2)

Run: .venv/bin/python bench/bench_sustained.py [--rate 500000 --rate 1000000] [--seconds 300]
     [--profile hardware_profiles/suparco/rover-1.yaml] [--per-frame 100]

Frames of ``--per-frame`` packets are offered on a fixed schedule (``--rate`` packets/s) and
taken as the ingestor takes them off its queue (``IngestConfig`` batch limits), without MQTT:
each batch is appended to the lane's WAL (one fsync), fed to the real ``Lane``, and when the
segment reaches ``IngestConfig``'s limits (messages, processed bytes, age) the WAL is rotated and
the closed segment sealed in a background thread by ``processing.seal``, one seal at a time as
``Ingestor._seal`` does: a segment that closes while the previous one is still sealing waits for
it, and ingest waits with it (the broker would queue the messages meanwhile). Every 10 s it
prints how far ingest is behind the offered schedule, the WAL backlog (closed segments not
sealed yet, and the bytes of every unsealed segment, the open one included), the mean seal time,
and where the ingest thread spent its time (WAL appends, Lane.feed, waiting for a seal).
Sealing keeps up when "behind" and the backlog stay flat.

The packets come from a pool made once by the simulator (its encoder is far slower than
ingest); each pass over the pool moves their CUC seconds on, so no packet repeats a time.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import itertools
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_process import START
from ilrs_ops.ingest import IngestConfig
from ilrs_ops.processing import Lane, seal
from ilrs_ops.profiles import Instrument, load_profile
from ilrs_ops.sim import Environment, Module
from ilrs_ops.store import Store, _seal

ROOT = Path(__file__).resolve().parents[1]
NS = 1_000_000_000
SEQ = 16_384  # the sequence count's modulo: a pool of a multiple of it has no gap when it wraps
REPORT_S = 10.0


def old_options(name: str, schema: object) -> dict[str, object]:
    """The seal's writer options before issue 14."""
    return {"compression": "zstd"}


class Pool:
    """Packets of one instrument made once, handed out frame by frame for ever: pass k carries
    the pool's times plus k * ``span_s`` seconds (the CUC coarse field, patched in place of a
    copy), so times only grow and sequence counts wrap without a gap."""

    def __init__(self, inst: Instrument, frames: int, per_frame: int, span_s: int, t0: int):
        if inst.profile.time.code != "cuc":
            raise SystemExit(f"{inst.id}: the pool patches CUC times; give a CUC profile")
        n = frames * per_frame
        if n % SEQ:
            raise SystemExit(f"pool of {n} packets: make it a multiple of {SEQ}")
        self.size = inst.profile.packet_length
        self.per_frame = per_frame
        self.frames = frames
        self.span_s = span_s
        m = Module(inst, Environment(epoch_ns=START), seed=1, start_ns=t0)
        t = t0 + (np.arange(n, dtype=np.int64) * span_s * NS) // n
        values = m.values(t)
        self.packets = m.encode(t, values).reshape(n, self.size)
        # The coarse seconds are the octets that differ when only the time moves by 1 s.
        later = m.encode(t[:1] + NS, {k: v[:1] for k, v in values.items()}).reshape(1, -1)
        diff = np.flatnonzero(later[0] != self.packets[0])
        coarse = inst.profile.time.coarse
        if len(diff) == 0 or diff[-1] - coarse + 1 < 0:
            raise SystemExit(f"{inst.id}: cannot find the CUC coarse time in the packet")
        self.at = int(diff[-1]) - coarse + 1  # the low octet of the seconds moved
        self.coarse = coarse
        self.next = 0  # frames handed out so far

    def take(self, k: int) -> list[bytes]:
        """The next ``k`` frames."""
        out: list[bytes] = []
        while k:
            i = self.next % self.frames
            j = min(self.frames, i + k)
            rows = self.packets[i * self.per_frame : j * self.per_frame].copy()
            shift = (self.next // self.frames) * self.span_s
            if shift:
                field = rows[:, self.at : self.at + self.coarse].astype(np.uint64)
                sec = np.zeros(len(rows), np.uint64)
                for b in range(self.coarse):
                    sec = (sec << np.uint64(8)) | field[:, b]
                sec += np.uint64(shift)
                for b in reversed(range(self.coarse)):
                    rows[:, self.at + b] = (sec & np.uint64(0xFF)).astype(np.uint8)
                    sec >>= np.uint64(8)
            buf = rows.tobytes()
            step = self.per_frame * self.size
            out.extend(buf[o : o + step] for o in range(0, len(buf), step))
            self.next += j - i
            k -= j - i
        return out


def backlog(store: Store, lane: str, open_segment: int) -> tuple[int, int]:
    """(closed WAL segments not sealed yet, bytes of every unsealed WAL segment)."""
    segs = store.unsealed(lane).segments
    size = 0
    for _, p in segs:
        with contextlib.suppress(FileNotFoundError):  # sealed meanwhile
            size += p.stat().st_size
    return sum(1 for n, _ in segs if n != open_segment), size


def run(inst: Instrument, pool: Pool, rate: float, seconds: float, root: Path) -> dict[str, float]:
    cfg = IngestConfig()
    topic = f"ilrs/tm/{inst.profile.partner}/{inst.id}"
    msg_rate = rate / pool.per_frame
    per_batch = min(cfg.batch_messages, cfg.batch_bytes // (pool.size * pool.per_frame))
    sealer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="seal")
    sealing: concurrent.futures.Future[None] | None = None
    seal_s: list[float] = []
    spent = {"wal": 0.0, "feed": 0.0, "wait": 0.0}  # the ingest thread's time, cumulative
    taken = 0
    quarantined = 0  # packets the lane refused (there should be none)
    with Store(root) as store:
        lane = Lane(inst.id, inst)
        wal = store.wal(inst.id)

        def seal_one(segment: int, tables: dict, state: object) -> None:
            t0 = time.perf_counter()
            seal(store, inst.id, inst, segment, tables, state)  # type: ignore[arg-type]
            seal_s.append(time.perf_counter() - t0)

        print(
            f"  {'t s':>5s} {'offered M':>9s} {'ingested M':>10s} {'behind s':>8s} "
            f"{'WAL closed':>10s} {'WAL MB':>7s} {'seals':>5s} {'seal s':>6s} "
            f"{'WAL s':>6s} {'feed s':>6s} {'wait s':>6s}"
        )
        start = time.monotonic()
        segment_started = start
        report = start + REPORT_S
        while True:
            now = time.monotonic()
            if now >= report:
                closed, size = backlog(store, inst.id, wal.segment)
                due = min(now - start, seconds) * msg_rate
                print(
                    f"  {now - start:5.0f} {due * pool.per_frame / 1e6:9.1f} "
                    f"{taken * pool.per_frame / 1e6:10.1f} {(due - taken) / msg_rate:8.1f} "
                    f"{closed:10d} {size / 1e6:7.0f} {len(seal_s):5d} "
                    f"{np.mean(seal_s) if seal_s else 0:6.2f} {spent['wal']:6.1f} "
                    f"{spent['feed']:6.1f} {spent['wait']:6.1f}",
                    flush=True,
                )
                report += REPORT_S
            if now - start >= seconds:
                break
            due = int((now - start) * msg_rate)
            k = min(due - taken, per_batch)
            if k <= 0:
                time.sleep((taken + 1) / msg_rate - (now - start))
                continue
            payloads = pool.take(k)
            recv = np.full(k, time.time_ns(), np.int64)
            topics = [topic] * k
            t0 = time.monotonic()
            wal.append(recv, topics, payloads)
            t1 = time.monotonic()
            lane.feed(recv, topics, payloads)
            spent["wal"] += t1 - t0
            spent["feed"] += time.monotonic() - t1
            taken += k
            if (
                lane.segment_messages >= cfg.segment_messages
                or lane.segment_bytes >= cfg.segment_bytes
                or time.monotonic() - segment_started >= cfg.segment_s
            ):
                if sealing is not None:
                    t0 = time.monotonic()
                    sealing.result()  # the previous seal first, as the ingestor does
                    spent["wait"] += time.monotonic() - t0
                closed = wal.rotate()
                tables, state = lane.take()
                quarantined += tables["quarantine"].num_rows
                segment_started = time.monotonic()
                if closed is not None:
                    sealing = sealer.submit(seal_one, closed, tables, state)
        if sealing is not None:
            sealing.result()
        sealer.shutdown()
        quarantined += lane.tables()["quarantine"].num_rows
        elapsed = time.monotonic() - start
    return {
        "offered": rate,
        "ingested": taken * pool.per_frame / elapsed,
        "seals": len(seal_s),
        "seal_s": float(np.mean(seal_s)) if seal_s else 0.0,
        "waited": spent["wait"],
        "quarantined": quarantined,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", type=Path, default=ROOT / "hardware_profiles/suparco/rover-1.yaml")
    ap.add_argument("--rate", type=float, action="append", help="packets/s offered (repeatable)")
    ap.add_argument("--seconds", type=float, default=300.0, help="per rate")
    ap.add_argument("--per-frame", type=int, default=100, help="packets per message")
    ap.add_argument(
        "--writer",
        choices=["new", "old"],
        action="append",
        help="the seal's Parquet writer options: new (the store's) or old (zstd with every "
        "column's dictionary, before issue 14), repeatable: each rate runs with each",
    )
    args = ap.parse_args()
    rates = args.rate or [500_000.0, 1_000_000.0]
    writers = args.writer or ["new"]
    inst = Instrument(load_profile(args.profile), args.profile)
    # Packet times an hour before the clock, so none is "from the future" however fast the
    # pool's seconds move (1 s per pass of the pool, some 800k packets).
    t0 = (time.time_ns() - 3600 * NS) // NS * NS
    unit = math.lcm(SEQ, args.per_frame)
    frames = unit * max(1, 800_000 // unit) // args.per_frame
    pool = Pool(inst, frames, args.per_frame, 1, t0)
    cfg = IngestConfig()
    print(
        f"{inst.id}: pool of {frames * args.per_frame} packets in frames of {args.per_frame}, "
        f"{args.seconds:.0f} s per rate; IngestConfig's batches ({cfg.batch_messages} messages) "
        f"and segments ({cfg.segment_messages} messages, {cfg.segment_bytes >> 20} MB of "
        f"processed tables, {cfg.segment_s:.0f} s)"
    )
    defaults = _seal.write_segment.__kwdefaults__
    new = defaults["options"]
    for rate, writer in itertools.product(rates, writers):
        print(
            f"offered {rate / 1e6:.2f} M packets/s, {writer} writer options, "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        # The Parquet seal calls write_segment with its default options: swap those.
        defaults["options"] = new if writer == "new" else old_options
        try:
            with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
                r = run(inst, pool, rate, args.seconds, Path(tmp))
        finally:
            defaults["options"] = new
        print(
            f"  ingested {r['ingested'] / 1e6:.2f} M packets/s of {rate / 1e6:.2f} offered; "
            f"{r['seals']:.0f} seals of {r['seal_s']:.2f} s on average; ingest waited "
            f"{r['waited']:.1f} s for seals; {r['quarantined']:.0f} packets quarantined; "
            f"load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
