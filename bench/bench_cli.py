"""Start-up time of the command line: `ilrs-ops --help` against the interpreter's own start.

Run: .venv/bin/python bench/bench_cli.py [-n 10]

Three commands, each in a fresh process, N times, interleaved (one of each in turn, so that a
busy moment of a shared machine falls on all three), after one untimed warm-up run of each:

- `python -c pass`: the interpreter's start, the floor;
- `python -c "import typer"`: the CLI library alone;
- `ilrs-ops --help`: the script beside this interpreter.

Median and min wall time of each, and `ilrs-ops --help` as a ratio of each baseline. To time
another checkout's CLI with the same interpreter, set PYTHONPATH to that checkout: its
ilrs_ops comes first on the path (the first line printed says which ilrs_ops/cli.py ran).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpus() -> int:
    """CPUs this process may use, as `nproc` counts them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def ilrs_ops_script() -> str:
    beside = Path(sys.executable).parent / "ilrs-ops"
    found = str(beside) if beside.exists() else shutil.which("ilrs-ops")
    if found is None:
        sys.exit("no ilrs-ops script beside this interpreter or on PATH; run `make setup`")
    return found


def run(cmd: list[str]) -> float:
    """Wall time of one run of ``cmd``, output discarded; a failure stops the benchmark."""
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10, help="timed runs of each command")
    args = ap.parse_args()

    py = sys.executable
    commands = {
        "python -c pass": [py, "-c", "pass"],
        'python -c "import typer"': [py, "-c", "import typer"],
        "ilrs-ops --help": [ilrs_ops_script(), "--help"],
    }
    # -P: not the current folder first, so this finds the ilrs_ops that the script imports.
    find = "import importlib.util; print(importlib.util.find_spec('ilrs_ops.cli').origin)"
    where = subprocess.run(
        [py, "-P", "-c", find],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"ilrs_ops.cli: {where} (PYTHONPATH={os.environ.get('PYTHONPATH', '')!r})")
    print(f"machine: {cpus()} CPUs (nproc), {cpu_model()}, Python {platform.python_version()}")
    print(f"{args.n} runs of each, interleaved, after one warm-up run\n")

    for cmd in commands.values():
        run(cmd)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.n):
        for name, cmd in commands.items():
            times[name].append(run(cmd))

    median = {name: statistics.median(t) for name, t in times.items()}
    least = {name: min(t) for name, t in times.items()}
    cli = "ilrs-ops --help"
    print("| command | median s | min s | ilrs-ops --help / this (median, min) |")
    print("| --- | --- | --- | --- |")
    for name in commands:
        ratio = f"{median[cli] / median[name]:.2f}, {least[cli] / least[name]:.2f}"
        print(f"| `{name}` | {median[name]:.3f} | {least[name]:.3f} | {ratio} |")


if __name__ == "__main__":
    main()
