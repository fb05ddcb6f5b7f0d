"""The console against bad input and guessing, on a real uvicorn: path traversal, NUL bytes,
long strings, quotes and YAML bombs in every parameter that reaches a file or a query get a
4xx (never a 5xx, never a file outside its folder read or written); failed authentications
are rate-limited per client address (HTTP and WebSocket), known tokens never slowed; no token
(nor its sha256) reaches a log line; anonymous callers get /healthz and the page only; and
the console refuses to start on an empty or obviously default tokens file."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
import uvicorn
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from ilrs_ops.console import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_PROFILE_UPLOAD,
    ConsoleError,
    ConsoleSettings,
    FailedLogins,
    RedactTokens,
    create_app,
    create_token,
)
from tests.conftest import ROOT
from tests.test_console_alarms import A, Site, make_site

CANARY = "CANARY-7f3a9c-outside-the-folders"
ROVER = (ROOT / "hardware_profiles" / "suparco" / "rover-1.yaml").read_text()


@dataclass
class Server:
    url: str
    app: Any

    @property
    def ws(self) -> str:
        return self.url.replace("http", "ws", 1) + "/api/live"


@contextlib.contextmanager
def running(settings: ConsoleSettings, **config: Any) -> Iterator[Server]:
    """The console on a real uvicorn (any free port) until the block ends."""
    app = create_app(settings)
    options: dict[str, Any] = {"log_level": "warning", "ws": "websockets-sansio"} | config
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "console did not start"
        time.sleep(0.05)
    try:
        yield Server(f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}", app)
    finally:
        server.should_exit = True
        thread.join(10)


def client(server: Server, address: str = "127.0.0.1") -> httpx.Client:
    """An HTTP client whose requests come from ``address`` (any of 127.0.0.0/8)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, transport=transport, timeout=10)


def ws_from(url: str, address: str, **kwargs: Any) -> Any:
    """A WebSocket client connected from ``address``."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), source_address=(address, 0))
    return connect(url, sock=sock, **kwargs)


def ws_close_code(url: str, address: str = "127.0.0.1", **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed, ws_from(url, address, **kwargs) as ws:
        ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    site = make_site(tmp_path_factory.mktemp("security"), "test_console_security", False)
    # Files a traversal would reach: beside the profiles and the store, and one level up.
    for where in (site.tmp / "secret.yaml", site.tmp.parent / "secret.yaml"):
        where.write_text(f"instrument: {CANARY}\n")
    return site


@pytest.fixture(scope="module")
def server(site: Site) -> Iterator[Server]:
    with running(site.settings) as s:
        yield s


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and mtime: what a request may have written."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


# ---------------------------------------------------------------------- bad input, every parameter

INJECTIONS = {
    "dotdot": "../../etc/passwd",
    "dotdot-secret": "../secret",
    "dotdot-deep": "../../../../../../../../etc/passwd",
    "encoded-dotdot": "..%2F..%2Fetc%2Fpasswd",
    "double-encoded": "%252e%252e%252fsecret",
    "absolute": "/etc/passwd",
    "absolute-secret": "/tmp/secret.yaml",
    "backslashes": "..\\..\\secret",
    "nul": "sup-rover-1\x00.yaml",
    "nul-encoded": "sup-rover-1%00",
    "long": "x" * 8000,
    "sql-quote": "' OR '1'='1",
    "sql-drop": "a'; DROP TABLE telemetry; --",
    "duckdb-read": "x') UNION SELECT * FROM read_csv_auto('/etc/passwd') --",
    "double-quote": '"batt_v"; SELECT 1',
    "glob": "*",
    "template": "${jndi:ldap://x}{{7*7}}",
    "newline": "a\r\nX-Injected: 1",
    "unicode": "\u202e\ufeffdr\u00f6ver",
    "empty-ish": " ",
    "commas": ",,",
}

# (method, path template with {x}, query template, statuses allowed). {x} is the bad value.
TARGETS = [
    ("GET", "/api/instruments/{x}", {}, {404}),
    ("GET", "/api/instruments/{x}/telemetry", {}, {404}),
    ("GET", "/api/instruments/{x}/export", {}, {404}),
    ("GET", f"/api/instruments/{A}/telemetry", {"channels": "{x}"}, {400}),
    ("GET", f"/api/instruments/{A}/telemetry", {"start": "{x}"}, {400}),
    ("GET", f"/api/instruments/{A}/telemetry", {"stop": "{x}"}, {400}),
    ("GET", f"/api/instruments/{A}/telemetry", {"max_points": "{x}"}, {422}),
    ("GET", f"/api/instruments/{A}/export", {"format": "{x}"}, {422}),
    ("GET", f"/api/instruments/{A}/export", {"channels": "{x}"}, {400}),
    ("GET", f"/api/instruments/{A}/export", {"start": "{x}"}, {400}),
    ("GET", "/api/events", {"instrument": "{x}"}, {404}),
    ("GET", "/api/events", {"kind": "{x}"}, {400}),
    ("GET", "/api/events", {"start": "{x}"}, {400}),
    ("GET", "/api/alarms", {"state": "{x}"}, {400}),
    ("GET", "/api/alarms", {"instrument": "{x}"}, {404}),
    ("GET", "/api/audit", {"instrument": "{x}"}, {404}),
    ("GET", "/api/audit", {"stop": "{x}"}, {400}),
    ("POST", "/api/alarms/{x}/batt_v/ack", {}, {404}),
    ("POST", f"/api/alarms/{A}/{{x}}/ack", {}, {404}),
    ("POST", f"/api/alarms/{A}/{{x}}/unshelve", {}, {404}),
    ("GET", "/api/profiles/suparco/{x}", {}, {400}),
    ("GET", "/api/profiles/{x}/sup-rover-1", {}, {400}),
    ("PUT", "/api/profiles/suparco/{x}", {}, {400}),
    ("PUT", "/api/profiles/{x}/sup-rover-1", {}, {400}),
    ("GET", "/static/{x}", {}, {404}),
]
# Some values are not one path segment once decoded ("a/b", "" ...): the router answers 404 (or
# 405 for a path that now matches another route's method) before any handler runs.
ROUTER_STATUSES = {404, 405}


def send(server: Server, token: str, method: str, target: str, body: bytes | None) -> tuple:
    """One request with ``target`` sent as it is (http.client does not normalise ``..``)."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        if body is not None:
            headers["Content-Type"] = "application/json" if method == "POST" else "text/yaml"
        conn.request(method, target, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def bad_requests() -> Iterator[Any]:
    for method, path, query, statuses in TARGETS:
        for name, value in INJECTIONS.items():
            for encode in ("encoded", "raw"):
                label = (
                    f"{method} {path} {'?' + next(iter(query)) if query else ''} {name} {encode}"
                )
                yield pytest.param(method, path, query, statuses, value, encode, id=label)


@pytest.mark.parametrize(
    ("method", "path", "query", "statuses", "value", "encode"), list(bad_requests())
)
def test_bad_values_in_every_parameter_are_4xx_and_touch_nothing(
    site: Site, server: Server, method, path, query, statuses, value, encode
):
    def put_in(template: str) -> str:
        if encode == "encoded":  # one segment or one query value, whatever it holds
            return template.replace("{x}", quote(value, safe=""))
        # Raw: only what may appear in a request line; "/" and ".." stay as they are.
        return template.replace("{x}", quote(value, safe="/.:*'${}=;,%\\"))

    target = put_in(path)
    if query:
        target += "?" + "&".join(f"{k}={put_in(v)}" for k, v in query.items())
    body = ROVER.encode() if method == "PUT" else (b"{}" if method == "POST" else None)
    before, beside = tree(site.tmp), set(site.tmp.parent.iterdir())
    status, content = send(server, site.tokens["operator"] or "", method, target, body)
    assert CANARY.encode() not in content and b"root:x:0:0" not in content
    if query and not value.strip(" ,"):
        statuses = statuses | {200}  # a blank filter is no filter
    else:
        assert 400 <= status < 500, (target, status, content[:300])
    assert status in statuses | ROUTER_STATUSES, (target, status, content[:300])
    assert tree(site.tmp) == before  # nothing written, not even an audit event
    assert set(site.tmp.parent.iterdir()) == beside


def laughs(levels: int = 9) -> str:
    text = 'lol0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for k in range(1, levels):
        text += f"lol{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 9) + "]\n"
    return text


@pytest.mark.parametrize(
    ("name", "body", "status", "says"),
    [
        ("billion-laughs", laughs(), 422, f"more than {MAX_NODES}"),
        (
            "laughs-in-a-profile",
            ROVER + "x_" + laughs().replace("\nlol", "\nx_lol"),
            422,
            f"more than {MAX_NODES}",
        ),
        ("deep-flow", "[" * 20_000 + "]" * 20_000, 422, f"deeper than {MAX_DEPTH}"),
        (
            "deep-block",
            "".join("  " * k + f"k{k}:\n" for k in range(200)) + "  " * 200 + "x",
            422,
            f"deeper than {MAX_DEPTH}",
        ),
        ("python-tag", '!!python/object/apply:os.system ["touch /tmp/pwned"]', 422, "problem"),
        ("nul-byte", ROVER.replace("name:", "name: a\x00b #", 1), 422, "not allowed"),
        ("not-utf8", b"\xff\xfe\x00i\x00n", 422, "UTF-8"),
        ("too-large", ROVER + "#" * MAX_PROFILE_UPLOAD, 413, "KiB"),
        ("far-too-large", b"#" * (20 * MAX_PROFILE_UPLOAD), 413, "KiB"),
    ],
)
def test_bad_profile_uploads_are_refused_quickly(
    site: Site, server: Server, name, body, status, says
):
    data = body if isinstance(body, bytes) else body.encode()
    before = tree(site.tmp / "profiles")
    t0 = time.monotonic()
    with client(server) as http:
        r = http.put(
            "/api/profiles/suparco/sup-rover-9", content=data, headers=site.headers("operator")
        )
    assert r.status_code == status, r.text[:500]
    assert says in r.text
    assert time.monotonic() - t0 < 5, "a bomb must be refused before it is built"
    assert tree(site.tmp / "profiles") == before
    assert not Path("/tmp/pwned").exists()


def test_oversized_json_bodies_are_4xx(site: Site, server: Server) -> None:
    with client(server) as http:
        r = http.post(
            f"/api/alarms/{A}/batt_v/ack",
            json={"reason": "x" * 2_000_000},
            headers=site.headers("operator"),
        )
        assert r.status_code == 413, r.text  # declared: refused before it is read
        # Anonymous, without Content-Length: counted as it streams, cut off past 1 MiB.
        chunks = (b"x" * 65536 for _ in range(10_000))
        r = http.post(f"/api/alarms/{A}/batt_v/ack", content=chunks)
        assert 400 <= r.status_code < 500


# ---------------------------------------------------------------------- rate limiting


def test_failed_logins_bucket_unit() -> None:
    now = [1000.0]
    logins = FailedLogins(3, 30.0, max_clients=100, clock=lambda: now[0])
    assert [logins.failed("a") for _ in range(3)] == [0, 0, 10]  # 3 at once, then 1 per 10 s
    assert logins.check("a") == 10 and logins.check("b") == 0
    now[0] += 4
    assert logins.check("a") == 6
    now[0] += 6
    assert logins.check("a") == 0  # one failure given back
    assert logins.failed("a") == 10
    now[0] += 30
    assert logins.check("a") == 0
    for k in range(10_000):  # many addresses: memory stays bounded
        logins.failed(f"10.0.{k // 256}.{k % 256}")
    assert len(logins) == 100
    with pytest.raises(ValueError):
        FailedLogins(0, 1.0)


def test_failed_authentications_are_rate_limited_per_address(site: Site) -> None:
    settings = site.settings.model_copy(update={"auth_failures": 3, "auth_window_s": 15.0})
    good, bad = site.headers("operator"), {"Authorization": "Bearer not-a-token"}
    with (
        running(settings) as server,
        client(server, "127.0.0.2") as guesser,
        client(server, "127.0.0.1") as desk,
    ):
        assert [guesser.get("/api/status", headers=bad).status_code for _ in range(3)] == [401] * 3
        r = guesser.get("/api/status", headers=bad)
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 5, r.text
        assert "retry in" in r.json()["detail"]
        # Blocked: even a good token from there is not looked at, on any route.
        assert guesser.get("/api/status", headers=good).status_code == 429
        assert guesser.get(f"/api/instruments/{A}", headers=good).status_code == 429
        # Another address is not affected, and a known token is not slowed.
        t0 = time.monotonic()
        for _ in range(20):
            assert desk.get("/api/status", headers=good).status_code == 200
        assert time.monotonic() - t0 < 5
        assert desk.get("/api/status", headers=bad).status_code == 401
        # Anonymous requests are not guesses: 401, not counted.
        assert desk.get("/api/status").status_code == 401
        # The WebSocket path shares the buckets: blocked from 127.0.0.2, counted from .3.
        code, reason = ws_close_code(server.ws + "?token=" + site.tokens["operator"], "127.0.0.2")
        assert code == 4429 and "retry-after:" in reason
        codes = [ws_close_code(server.ws + "?token=nope", "127.0.0.3")[0] for _ in range(4)]
        assert codes == [4401, 4401, 4401, 4429]
        with client(server, "127.0.0.3") as third:
            assert third.get("/api/status", headers=good).status_code == 429
        code, _ = ws_close_code(server.ws, "127.0.0.3", subprotocols=["bearer", "nope"])
        assert code == 4429
        # The bucket refills: one failure back per window / limit = 5 s.
        r = guesser.get("/api/status", headers=good)
        assert r.status_code == 429
        time.sleep(int(r.headers["retry-after"]) + 0.2)
        assert guesser.get("/api/status", headers=good).status_code == 200


# ---------------------------------------------------------------------- no secrets in logs


def test_no_token_nor_its_hash_in_any_log_line(site: Site, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    token = site.tokens["operator"] or ""
    wrong = "wrong-" + token[::-1]
    secrets = [token, wrong, site.tokens["partner_a"] or ""]
    secrets += [hashlib.sha256(s.encode()).hexdigest() for s in secrets]
    # The server's own logging: access log on, records propagate to pytest's handler.
    with running(site.settings, log_level="debug", access_log=True, log_config=None) as server:
        with client(server) as http:
            assert http.get("/api/status", headers=site.headers("operator")).status_code == 200
            assert http.get("/api/status", params={"token": token}).status_code == 401
            bad = {"Authorization": f"Bearer {wrong}"}
            assert http.get(f"/api/instruments/{A}", headers=bad).status_code == 401
            r = http.post(f"/api/alarms/{A}/batt_v/ack", headers=site.headers("partner_a"))
            assert r.status_code == 409
        with ws_from(f"{server.ws}?token={token}", "127.0.0.1") as ws:
            assert '"snapshot"' in ws.recv(timeout=5)
        assert ws_close_code(f"{server.ws}?token={wrong}&instruments={A}")[0] == 4401
        with ws_from(server.ws, "127.0.0.1", subprotocols=["bearer", token]) as ws:
            ws.recv(timeout=5)
    # The test's own clients log what they send at DEBUG: not the console's lines.
    ours = [r for r in caplog.records if not r.name.startswith(("websockets.client", "http"))]
    lines = [r.getMessage() for r in ours]
    assert any("/api/live?token=[redacted]" in line for line in lines), lines  # logged, blanked
    assert any("GET /api/status" in line for line in lines)  # the access log was on
    for line in lines:
        for secret in secrets:
            assert secret not in line, line


def test_redaction_filter_blanks_tokens_only() -> None:
    def shown(msg: str, *args: object) -> str:
        record = logging.LogRecord("uvicorn.error", logging.INFO, "", 0, msg, args, None)
        assert RedactTokens().filter(record)
        return record.getMessage()

    line = shown('%s - "%s %s"', "1.2.3.4", "GET", "/api/live?instruments=a&token=s3cr3t&x=1")
    assert line == '1.2.3.4 - "GET /api/live?instruments=a&token=[redacted]&x=1"'
    assert shown("< %s: %s", "sec-websocket-protocol", "bearer, s3cr3t") == (
        "< sec-websocket-protocol: bearer, [redacted]"
    )
    assert shown("< authorization: Bearer s3cr3t") == "< authorization: Bearer [redacted]"
    assert shown("alarm state rebuilt from %d events", 12) == "alarm state rebuilt from 12 events"


# ---------------------------------------------------------------------- anonymous, defaults


def test_anonymous_gets_healthz_the_page_and_the_docs_only(site: Site, server: Server) -> None:
    with client(server) as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/").status_code == 200
        assert http.get("/static/console.js").status_code == 200
        assert http.get("/docs").status_code == 200 and http.get("/redoc").status_code == 404
        doc = http.get("/openapi.json").json()  # the API's description: no data in it
        for path, operations in doc["paths"].items():
            if path == "/healthz":
                continue
            url = path.replace("{", "").replace("}", "")
            for method in operations:
                r = http.request(method.upper(), url)
                assert r.status_code == 401, (method, path, r.status_code)
                assert r.headers["www-authenticate"] == "Bearer"
    assert ws_close_code(server.ws)[0] == 4401


def test_empty_or_default_tokens_files_are_refused(
    site: Site, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("tokens: []\n")
    settings = site.settings.model_copy(update={"tokens": empty})
    with pytest.raises(ConsoleError, match="no tokens"):
        create_app(settings)
    default = tmp_path / "default.yaml"
    sha = hashlib.sha256(b"changeme").hexdigest()
    default.write_text(f"tokens:\n  - {{name: ops, role: operator, sha256: {sha}}}\n")
    with pytest.raises(ConsoleError, match="obvious default"):
        create_app(settings.model_copy(update={"tokens": default}))
    # Dev mode is for a desk, not a station: it may run on them.
    create_app(settings.model_copy(update={"tokens": default, "dev": True}))
    # A tokens file others may read starts, with a warning (it holds hashes, not tokens).
    shared = tmp_path / "shared.yaml"
    create_token(shared, "desk", "operator")
    shared.chmod(0o644)
    with caplog.at_level(logging.WARNING, "ilrs_ops.console._auth"):
        create_app(settings.model_copy(update={"tokens": shared}))
    assert any("chmod 600" in r.getMessage() for r in caplog.records)
