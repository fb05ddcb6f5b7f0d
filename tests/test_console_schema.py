"""Schemathesis against the console's own OpenAPI, in process (ASGI), over a store with data:
for every operation, generated valid and invalid requests with an operator's and a partner's
token never get a 5xx, and every answer matches the schema (status documented, body valid).

Generated ids would never name a real instrument, so a drawn share of the cases is steered
onto the store's instruments, their channels and partners and the window that holds data."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi

from ilrs_ops.console import create_app
from tests.test_console_alarms import A, B, Site, make_site

NS = 1_000_000_000
#: Examples per operation and generation mode (valid, invalid); each is sent with two tokens.
EXAMPLES = 50  # about 35 s for all operations on two cores; the slow variant ~1 min
EXAMPLES_SLOW = 125
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
#: Every operation of the OpenAPI document; a test below keeps this list complete.
OPERATIONS = [
    ("GET", "/healthz"),
    ("GET", "/api/status"),
    ("GET", "/api/me"),
    ("GET", "/api/clock"),
    ("GET", "/api/instruments/{instrument_id}"),
    ("GET", "/api/instruments/{instrument_id}/telemetry"),
    ("GET", "/api/instruments/{instrument_id}/export"),
    ("GET", "/api/events"),
    ("GET", "/api/instruments/{instrument_id}/packets"),
    ("GET", "/api/packets/unknown"),
    ("GET", "/api/search"),
    ("GET", "/metrics"),
    ("GET", "/api/links"),
    ("GET", "/api/alarms"),
    ("POST", "/api/alarms/{instrument}/{channel}/ack"),
    ("POST", "/api/alarms/{instrument}/{channel}/shelve"),
    ("POST", "/api/alarms/{instrument}/{channel}/unshelve"),
    ("GET", "/api/audit"),
    ("PUT", "/api/profiles/{partner}/{instrument}"),
    ("GET", "/api/profiles/{partner}/{instrument}"),
    ("GET", "/api/recordings"),
    ("GET", "/api/replays"),
    ("POST", "/api/replays"),
    ("GET", "/api/replays/{replay_id}"),
    ("POST", "/api/replays/{replay_id}/pause"),
    ("POST", "/api/replays/{replay_id}/resume"),
    ("POST", "/api/replays/{replay_id}/stop"),
    ("GET", "/api/instruments/{instrument}/commands"),
    ("POST", "/api/commands"),
    ("POST", "/api/commands/preview"),
    ("GET", "/api/commands"),
    ("GET", "/api/commands/{id}"),
    ("POST", "/api/commands/{id}/approve"),
    ("POST", "/api/commands/{id}/reject"),
    ("POST", "/api/commands/{id}/cancel"),
    ("GET", "/api/queues/{instrument}"),
    ("POST", "/api/queues/{instrument}/hold"),
    ("POST", "/api/queues/{instrument}/release"),
    ("GET", "/api/dashboards"),
    ("POST", "/api/dashboards"),
    ("GET", "/api/dashboards/{board_id}"),
    ("PUT", "/api/dashboards/{board_id}"),
    ("DELETE", "/api/dashboards/{board_id}"),
]
#: GETs that cannot answer 200 over this site (no replay runs in it, no command was sent,
#: a dashboard id is not guessed).
NO_DATA = {"/healthz", "/metrics", "/api/replays/{replay_id}", "/api/commands/{id}",
           "/api/dashboards/{board_id}"}  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return make_site(tmp_path_factory.mktemp("schema"), "test_console_schema")


@pytest.fixture(scope="module")
def api(site: Site) -> Iterator[Any]:
    app = create_app(site.settings)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=site.headers("operator"))
    try:
        yield schema
    finally:
        asgi.shutdown_lifespans()  # the app's broker follower and store, started on first call


def test_the_operations_list_is_complete(api: Any) -> None:
    found = {(r.ok().method.upper(), r.ok().path) for r in api.get_all_operations()}
    assert found == set(OPERATIONS)


def steer(case: Any, data: st.DataObject, site: Site) -> None:
    """Real ids, channels and windows, each drawn with some probability (else left as made)."""
    if not data.draw(st.booleans(), "steer"):
        return
    real = data.draw(st.sampled_from([A, B, "cnsa-relay", "sup-rover-1"]), "instrument")
    inst = site.catalog.instruments[real]
    channels = data.draw(st.lists(st.sampled_from(inst.channels), min_size=1, max_size=3))
    path = case.path_parameters or {}
    for key in ("instrument_id", "instrument"):
        if key in path:
            path[key] = real
    if "partner" in path:
        path["partner"] = inst.profile.partner
    if "channel" in path:
        path["channel"] = channels[0]
    query = case.query if isinstance(case.query, dict) else None
    if query is None:
        return
    if "channels" in query or data.draw(st.booleans(), "channels"):
        query["channels"] = ",".join(channels)
    if data.draw(st.booleans(), "window"):
        now = time.time_ns()
        query["start"] = str(now - data.draw(st.integers(0, 3 * 3600), "back") * NS)
        query["stop"] = str(now)
    if "instrument" in query:
        query["instrument"] = real


def fuzz(api: Any, site: Site, method: str, path: str, examples: int) -> dict[int, int]:
    """``examples`` valid and ``examples`` invalid cases of one operation, each sent with an
    operator's and a partner's token; returns how often each status came back."""
    operation = api[path][method]
    strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )
    seen: dict[int, int] = {}

    @settings(
        max_examples=2 * examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=strategy, data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        steer(case, data, site)
        for role in ("operator", "partner_a"):  # everything; one partner's own instruments
            response = case.call_and_validate(headers=site.headers(role), checks=CHECKS)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1

    run()
    print(f"{method} {path}: statuses {sorted(seen.items())}")
    return seen


IDS = [f"{m} {p}" for m, p in OPERATIONS]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
def test_no_5xx_and_every_answer_matches_the_schema(
    api: Any, site: Site, method: str, path: str
) -> None:
    seen = fuzz(api, site, method, path, EXAMPLES)
    if method == "GET" and path not in NO_DATA:
        assert 200 in seen, "no case reached the data: steer more"


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
def test_no_5xx_and_schema_conformance_at_length(
    api: Any, site: Site, method: str, path: str
) -> None:
    fuzz(api, site, method, path, EXAMPLES_SLOW)
