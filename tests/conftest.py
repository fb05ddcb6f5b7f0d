"""Shared fixtures: the station catalog, the test profile, an own topic root per test."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ilrs_ops.profiles import Catalog, Profile, load_catalog

ROOT = Path(__file__).parents[1]
DATA = Path(__file__).parent / "data"
MOSQUITTO = ("127.0.0.1", 1883)
MOSQUITTO_EXE = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
SPP_VERSION = "6.2.0"
SPP_SHA256 = "3ea22605a0c7f328c151fb77c392b554025ba00a136825c6212d490255b505aa"


@pytest.fixture(scope="session")
def spp_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """space-packet-parser's tests/test_data, from its sdist (digest checked)."""
    cache = tmp_path_factory.mktemp("spp")
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
           ":all:", "-d", str(cache), f"space-packet-parser=={SPP_VERSION}"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"cannot download the space-packet-parser sdist: {done.stderr}"
    sdist = cache / f"space_packet_parser-{SPP_VERSION}.tar.gz"
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    assert digest == SPP_SHA256, f"{sdist.name} is not the published file ({digest})"
    with tarfile.open(sdist) as tf:
        members = [m for m in tf.getmembers() if "/tests/test_data/" in m.name]
        tf.extractall(cache, members=members, filter="data")
    return cache / f"space_packet_parser-{SPP_VERSION}" / "tests" / "test_data"


@pytest.fixture(scope="session")
def station() -> Catalog:
    """Every instrument of the station in hardware_profiles/."""
    return load_catalog([ROOT / "hardware_profiles"])


@pytest.fixture(scope="session")
def rover() -> Catalog:
    """The small test rover of tests/data/good_profiles (uses every calibration form)."""
    return load_catalog([DATA / "good_profiles"])


@pytest.fixture
def topic_root(request: pytest.FixtureRequest) -> str:
    """A topic root of this test's own, so tests never see each other's traffic, not even the
    same test run by another session on the same broker at the same time (the process id)."""
    return f"test/{os.getpid()}/" + re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reference_fields(profile: Profile) -> list[tuple]:
    """The profile's bit layout for tests/reference.py, derived here by hand from the format:
    48-bit primary header, the time code octets, then the fields bit-packed in order; a
    sub-field reads bits of its parent's value (``bit`` from its most significant bit, in the
    parent's byte order) and takes no bits of its own. A string, bytes or wide integer field
    is its octets, one u8 element each; a 2-D array is one field per axis, ``<name>_<axis>``,
    whose elements lie one sample of every axis apart (interleaved) or follow each other
    (planar)."""
    header = [
        ("_version", 3),
        ("_type", 1),
        ("_sec_hdr", 1),
        ("_apid", 11),
        ("_seq_flags", 2),
        ("_seq_count", 14),
        ("_length", 16),
    ]
    t = profile.time
    if t.code == "cuc":
        header += [("_time_coarse", 8 * t.coarse), ("_time_fine", 8 * t.fine)]
    elif t.code == "cds":
        header += [("_time_days", 8 * t.days), ("_time_ms", 32), ("_time_subms", 8 * t.subms)]
    out, bit = [], 0
    for name, width in header:
        if width:
            out.append((name, bit, width, "u", "big", None))
            bit += width
    placed: dict[str, tuple[int, int, str]] = {}
    for f in profile.fields:
        if f.type in ("string", "bytes") or int(f.type[1:]) > 64:
            octets = (f.length or 0) if f.type in ("string", "bytes") else int(f.type[1:]) // 8
            out.append((f.name, bit, 8, "u", "big", octets))
            bit += 8 * octets
            continue
        kind = f.type if f.type.startswith("f") else f.type[0]
        width = int(f.type[1:])
        if f.axes:
            count, n = f.count or 1, len(f.axes)
            for a, axis in enumerate(f.axes):
                if f.planar:
                    out.append((f"{f.name}_{axis}", bit + a * count * width, width, kind,
                                f.endian, count))  # fmt: skip
                else:
                    out.append((f"{f.name}_{axis}", bit + a * width, width, kind, f.endian,
                                count, None, n * width))  # fmt: skip
            bit += width * count * n
            continue
        if f.of is not None:
            p_bit, p_width, p_order = placed[f.of]
            out.append((f.name, f.bit, width, kind, p_order, f.count, (p_bit, p_width)))
            continue
        out.append((f.name, bit, width, kind, f.endian, f.count))
        placed[f.name] = (bit, width, f.endian)
        bit += width * (f.count or 1)
    assert bit == 8 * profile.packet_length
    return out


def start_mosquitto(conf: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Run the machine's Mosquitto binary with ``conf`` (its output appended to ``log``) and
    return once ``port`` takes connections; RuntimeError with the log when it does not."""
    with log.open("ab") as out:
        proc = subprocess.Popen([MOSQUITTO_EXE, "-c", str(conf)], stdout=out, stderr=out)
    for _ in range(200):
        if proc.poll() is not None:
            break
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"mosquitto did not start: {log.read_text()}")


@pytest.fixture
def private_broker(tmp_path: Path, free_port: int):
    """A Mosquitto of this test's own on a free port: queues without limit for offline
    persistent sessions (the machine's broker keeps only 1000), so a test can kill clients."""
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {free_port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 0\nmax_inflight_messages 0\n"
    )
    proc = start_mosquitto(conf, free_port, tmp_path / "mosquitto.log")
    yield ("127.0.0.1", free_port)
    proc.terminate()
    proc.wait(5)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A real S3-compatible server (moto's, in server mode) on loopback for the session: the
    ``AWS_*`` settings that reach it. Each test makes a bucket of its own (``s3_bucket``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, f"the S3 server exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"the S3 server did not listen: {log.read_text()}"
            time.sleep(0.1)
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "ilrs-test",
        "AWS_SECRET_ACCESS_KEY": "ilrs-test",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }
    yield env
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def s3_bucket(s3_server: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket on the test S3 server, with its settings in this test's environment."""
    import boto3

    for k, v in s3_server.items():
        monkeypatch.setenv(k, v)
    name = f"ilrs-{os.getpid()}-{time.time_ns()}"
    boto3.client(
        "s3",
        endpoint_url=s3_server["AWS_ENDPOINT_URL"],
        aws_access_key_id=s3_server["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_server["AWS_SECRET_ACCESS_KEY"],
        region_name=s3_server["AWS_REGION"],
    ).create_bucket(Bucket=name)
    return f"s3://{name}/station"


def _archive_base(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "delta":
        return str(tmp_path / "archives")
    return request.getfixturevalue("s3_bucket")


@pytest.fixture(params=["delta", "s3"])
def delta_archive(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URI of an empty Delta Lake archive: on a local path, then on the S3 server."""
    return _archive_base(request.param, request, tmp_path) + "/one"


@pytest.fixture(params=["parquet", "delta", "s3"])
def archived(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[Path], Path]:
    """A function that readies a store folder for this run's kind of sealed tables and
    returns it: Parquet under the folder (as it is), a Delta Lake archive of its own on a
    local path, or one on the S3 server. A test that takes it runs three times."""
    from ilrs_ops.store import Store

    base = None if request.param == "parquet" else _archive_base(request.param, request, tmp_path)

    def ready(root: Path) -> Path:
        if base is not None:
            name = "-".join(root.relative_to(tmp_path).parts) or "root"
            Store(root, archive=f"{base}/{name}").close()
        return root

    return ready
