"""Profile upload on a real uvicorn: a good profile lands byte for byte and reads back, a broken
one is refused with where and what, clashes are refused, partners write only their own folder,
names cannot escape the folder, the size is bounded, and every upload is audited."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from ilrs_ops.console import MAX_PROFILE_UPLOAD
from ilrs_ops.profiles import load_catalog
from tests.conftest import ROOT
from tests.test_console_alarms import Site, make_site, serve

ROVER = (ROOT / "hardware_profiles" / "suparco" / "rover-1.yaml").read_text()
NEW = "sup-rover-2"


def rover2(apid: str = "0x2A2") -> str:
    text = ROVER.replace("instrument: sup-rover-1", f"instrument: {NEW}")
    return text.replace("apid: 0x2A1", f"apid: {apid}")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, httpx.Client]]:
    site = make_site(tmp_path_factory.mktemp("profiles"), "test_console_profiles", False)
    with serve(site) as (http, _):
        yield site, http


def put(http: httpx.Client, site: Site, role: str, path: str, text: str | bytes):
    body = text.encode() if isinstance(text, str) else text
    return http.put(f"/api/profiles/{path}", headers=site.headers(role), content=body)


def test_good_profile_lands_and_reads_back(running: tuple[Site, httpx.Client]):
    site, http = running
    text = "# uploaded by the partner\n" + rover2()
    r = put(http, site, "partner_a", f"suparco/{NEW}", text)
    assert r.status_code == 200, r.text
    assert r.json()["replaced"] is False and r.json()["event"]["detail"]["who"] == "suparco-ops"
    path = site.tmp / "profiles" / "suparco" / f"{NEW}.yaml"
    assert path.read_bytes() == text.encode()  # byte-identical
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left
    assert NEW in load_catalog([site.tmp / "profiles"]).instruments  # what ingest will load
    r = http.get(f"/api/profiles/suparco/{NEW}", headers=site.headers("partner_a"))
    assert r.status_code == 200 and r.text == text
    # The console knows the new instrument at once (its own catalog reloaded).
    r = http.get(f"/api/instruments/{NEW}", headers=site.headers("operator"))
    assert r.status_code == 200, r.text
    assert (
        http.get(f"/api/profiles/suparco/{NEW}", headers=site.headers("partner_b")).status_code
        == 403
    )

    # Replacing it (same id, same file) is fine; an existing file under another name is
    # replaced in place rather than doubled.
    text2 = text.replace("name: SUPARCO rover housekeeping", "name: Second rover")
    r = put(http, site, "operator", f"suparco/{NEW}", text2)
    assert r.status_code == 200 and r.json()["replaced"] is True
    assert path.read_text() == text2
    r = put(http, site, "partner_a", "suparco/sup-rover-1", ROVER)
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "suparco/sup-rover-1.yaml"
    assert not (site.tmp / "profiles" / "suparco" / "sup-rover-1.yaml").exists()
    assert (site.tmp / "profiles" / "suparco" / "rover-1.yaml").read_text() == ROVER

    # Audited, with who.
    r = http.get("/api/audit", headers=site.headers("operator"), params={"kind": "profile"})
    assert r.status_code == 200
    uploads = [(a["instrument"], a["who"]) for a in r.json()["actions"] if a["kind"] == "profile"]
    assert uploads == [(NEW, "suparco-ops"), (NEW, "desk"), ("sup-rover-1", "suparco-ops")]

    # Filtered by who and action in the API (so `limit` counts what matches), paged by stop.
    def audit(**params: str | int) -> dict:
        r = http.get("/api/audit", headers=site.headers("operator"), params=params)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    mine = audit(who="suparco-ops", kind="profile")["actions"]
    assert [a["instrument"] for a in mine] == [NEW, "sup-rover-1"]
    assert audit(kind="ack")["actions"] == []
    newest = audit(kind="profile", limit=1)
    assert newest["truncated"] and [a["who"] for a in newest["actions"]] == ["suparco-ops"]
    before = audit(kind="profile", limit=1, stop=newest["actions"][0]["time_ns"])
    assert [(a["instrument"], a["who"]) for a in before["actions"]] == [(NEW, "desk")]
    r = http.get("/api/audit", headers=site.headers("operator"), params={"kind": "bogus"})
    assert r.status_code == 400 and "bogus" in r.text


def test_broken_profile_gets_where_and_what(running: tuple[Site, httpx.Client]):
    site, http = running
    text = rover2("0x2A3").replace("    type: u12\n", "    type: u77\n", 1)
    line = text.splitlines().index("    type: u77") + 1
    r = put(http, site, "partner_a", "suparco/sup-rover-3", text)
    assert r.status_code == 422, r.text
    problems = r.json()["problems"]
    assert any(p["line"] == line and p["field"] for p in problems), problems
    p = next(p for p in problems if p["line"] == line)
    assert p["file"] == "suparco/sup-rover-3.yaml" and p["column"] and p["message"]
    assert not (site.tmp / "profiles" / "suparco" / "sup-rover-3.yaml").exists()

    r = put(http, site, "partner_a", "suparco/sup-rover-3", "instrument: [unclosed\n")
    assert r.status_code == 422 and r.json()["problems"][0]["line"] in (1, 2)  # end of flow
    r = put(http, site, "partner_a", "suparco/sup-rover-3", b"\xff\xfe")
    assert r.status_code == 422
    # The URL and the text must agree.
    r = put(http, site, "partner_a", "suparco/sup-rover-4", rover2("0x2A4").replace(NEW, "x-1"))
    assert r.status_code == 422 and r.json()["problems"][0]["field"] == "instrument"


def test_clashes_are_refused(running: tuple[Site, httpx.Client]):
    site, http = running
    r = put(http, site, "partner_a", "suparco/sup-rover-5",
            rover2("0x101").replace(NEW, "sup-rover-5"))  # fmt: skip
    assert r.status_code == 422, r.text
    assert [p["field"] for p in r.json()["problems"]] == ["apid"]
    assert "0x101" in r.json()["problems"][0]["message"]
    # An id another partner's file already holds (cnsa-eps lives in cnsa/).
    cnsa = (ROOT / "hardware_profiles" / "cnsa" / "eps.yaml").read_text()
    r = put(
        http,
        site,
        "operator",
        "suparco/cnsa-eps",
        cnsa.replace("partner: cnsa", "partner: suparco"),
    )
    assert r.status_code == 422
    assert "instrument" in [p["field"] for p in r.json()["problems"]]
    assert not (site.tmp / "profiles" / "suparco" / "sup-rover-5.yaml").exists()


def test_who_may_upload_names_and_size(running: tuple[Site, httpx.Client]):
    site, http = running
    text = rover2("0x2A6").replace(NEW, "sup-rover-6")
    for role, status in (("partner_b", 403), ("viewer", 403), ("anonymous", 401)):
        assert put(http, site, role, "suparco/sup-rover-6", text).status_code == status, role
    assert not (site.tmp / "profiles" / "suparco" / "sup-rover-6.yaml").exists()
    for bad in ("suparco/..%2E", "Suparco/sup-rover-6", "suparco/sup_rover.6", "..%2F/x",
                "suparco/%2E%2E"):  # fmt: skip
        r = put(http, site, "operator", bad, text)
        assert r.status_code in (400, 404), (bad, r.status_code)
        assert r.status_code != 200
    assert put(http, site, "operator", "suparco/.hidden", text).status_code == 400
    assert put(http, site, "operator", "sup..arco/x", text).status_code == 400
    big = text + "#" * MAX_PROFILE_UPLOAD
    assert put(http, site, "partner_a", "suparco/sup-rover-6", big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(5):
            yield b"#" * (MAX_PROFILE_UPLOAD // 4)

    r = http.put("/api/profiles/suparco/sup-rover-6", headers=site.headers("partner_a"),
                 content=chunks())  # fmt: skip
    assert r.status_code == 413
    assert not (site.tmp / "profiles" / "suparco" / "sup-rover-6.yaml").exists()


def test_a_profile_dropped_into_the_folder_reaches_the_console(
    running: tuple[Site, httpx.Client],
) -> None:
    """Not uploaded, copied in (as a partner's file arrives by other means): the console
    loads it as ingest does; a broken file is refused and the catalog in force stays."""
    site, http = running
    folder = site.tmp / "profiles" / "suparco"
    dropped = "sup-rover-9"

    def known(iid: str) -> bool:
        return (
            http.get(f"/api/instruments/{iid}", headers=site.headers("operator")).status_code == 200
        )

    def wait_for(iid: str, want: bool) -> bool:
        deadline = time.monotonic() + 20
        while known(iid) != want and time.monotonic() < deadline:
            time.sleep(0.2)
        return known(iid) == want

    assert not known(dropped)
    broken = rover2("0x2A9").replace(f"instrument: {NEW}", f"instrument: {dropped}")
    (folder / f"{dropped}.yaml").write_text(broken.replace("    type: u12\n", "    type: u77\n", 1))
    time.sleep(2.0)  # twice the watch's debounce: a reload would have come by now
    assert not known(dropped) and known("sup-rover-1")  # refused; the rest stays in force
    (folder / f"{dropped}.yaml").write_text(broken)
    assert wait_for(dropped, True)
    (folder / f"{dropped}.yaml").unlink()
    assert wait_for(dropped, False)
