"""scripts/audit.py (make lint-audit): the lock's pins as pip-audit reads them, the allow-list, the
verdict, the one line where no vulnerability service answers, and a real pip-audit run against a
stand-in OSV service on the loopback interface."""

from __future__ import annotations

import datetime
import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

_spec = importlib.util.spec_from_file_location("lock_audit", REPO_ROOT / "scripts" / "audit.py")
assert _spec is not None and _spec.loader is not None
audit = sys.modules.setdefault("lock_audit", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(audit)

TODAY = datetime.date(2026, 12, 7)
FIXABLE = {"id": "GHSA-aaaa", "fix_versions": ["2.0.1"], "aliases": ["CVE-2026-1"]}
UNFIXED = {"id": "PYSEC-2026-2", "fix_versions": [], "aliases": []}


def allowed(**fields) -> audit.Allowed:
    values = {
        "id": "PYSEC-2026-2",
        "package": "urllib3",
        "reason": "only the proxy code, unused",
        "added": TODAY,
        "until": TODAY + datetime.timedelta(days=30),
    }
    return audit.Allowed(**{**values, **fields})


def report(*vulns_by_package: tuple[str, list[dict]]) -> dict:
    return {"dependencies": [{"name": n, "version": "2.0.0", "vulns": v} for n, v in vulns_by_package]}


def test_pins_come_from_lock_and_freeze_without_the_project_or_local_labels():
    lock = (
        "torch==2.13.0+cpu \\\n    --hash=sha256:00\n    # via pml-ops (pyproject.toml)\nFlask_WTF==1.3.0\n"
    )
    freeze = "-e /work/project\npml-ops==0.1.0\npip==26.3\nnumpy==2.4.6\n"
    assert audit.read_pins(lock) == {"torch": "2.13.0", "flask-wtf": "1.3.0"}
    assert audit.read_pins(freeze) == {"pip": "26.3", "numpy": "2.4.6"}
    pins = audit.read_pins((REPO_ROOT / audit.DEFAULT_LOCK).read_text())
    assert pins["torch"] == pins["torch"].split("+")[0] and "pml-ops" not in pins and len(pins) > 100


def test_the_allow_list_needs_a_reason_and_dates(tmp_path: Path):
    assert audit.read_allow_list() == []  # the committed one is valid (and empty)
    good = tmp_path / "allow.toml"
    good.write_text(
        '[[allow]]\nid = "PYSEC-2026-2"\npackage = "URLlib3"\nreason = "r"\n'
        "added = 2026-12-07\nuntil = 2027-01-06\n"
    )
    assert audit.read_allow_list(good) == [allowed(reason="r", until=datetime.date(2027, 1, 6))]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[allow]]\nid = "X"\npackage = "p"\nreason = ""\nadded = 2026-12-07\nuntil = "soon"\n')
    with pytest.raises(ValueError, match="entry 1: missing reason"):
        audit.read_allow_list(bad)


def test_a_vulnerability_fails_the_audit_unless_accepted_until_a_date():
    found = report(("requests", [FIXABLE]), ("urllib3", [UNFIXED]), ("numpy", []))
    lines, failed, used = audit.evaluate(found, [], TODAY)
    assert failed and used == set()
    assert lines[0] == (
        "✗ requests 2.0.0: GHSA-aaaa / CVE-2026-1: fixed in 2.0.1 (make lock UPGRADE_PACKAGE=requests)"
    )
    assert lines[1].startswith("✗ urllib3 2.0.0: PYSEC-2026-2: no fixed release yet; accept it in")

    entry = allowed()
    lines, failed, used = audit.evaluate(report(("urllib3", [UNFIXED])), [entry], TODAY)
    assert not failed and used == {entry}
    assert lines == [
        f"! urllib3 2.0.0: PYSEC-2026-2 accepted until {entry.until} (only the proxy code, unused)"
    ]
    # An alias matches; another package's entry does not; a past `until` fails again.
    assert not audit.evaluate(
        report(("requests", [FIXABLE])), [allowed(id="CVE-2026-1", package="requests")], TODAY
    )[1]
    assert audit.evaluate(report(("requests", [UNFIXED])), [entry], TODAY)[1]
    lines, failed, _ = audit.evaluate(
        report(("urllib3", [UNFIXED])), [entry], entry.until + datetime.timedelta(1)
    )
    assert failed and "accepted only until" in lines[0]


def test_no_service_is_one_line_and_no_pass(monkeypatch, capsys):
    monkeypatch.setattr(
        audit, "pick_service", lambda pins: (None, ["PyPI: HTTP 404", "OSV: does not resolve"])
    )
    monkeypatch.delenv(audit.REQUIRED_ENV, raising=False)
    assert audit.main([audit.DEFAULT_LOCK]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 1 and out.startswith("audit: NOT AUDITED (")
    assert "PyPI: HTTP 404; OSV: does not resolve" in out and "no known vulnerability" not in out
    monkeypatch.setenv(audit.REQUIRED_ENV, "required")
    assert audit.main([audit.DEFAULT_LOCK]) == 1


class _OSV(BaseHTTPRequestHandler):
    """OSV's query API for two advisories: one on requests 2.0.0 (fixed in 2.0.1), one on urllib3
    2.0.0 with no fixed release."""

    def do_POST(self) -> None:
        query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name, version = query["package"]["name"], query["version"]
        events: dict[str, list[dict]] = {
            "requests": [{"introduced": "0"}, {"fixed": "2.0.1"}],
            "urllib3": [{"introduced": "0"}],
        }
        body: dict = {}
        if name in events and version == "2.0.0":
            advisory = "GHSA-aaaa" if name == "requests" else "PYSEC-2026-2"
            affected = {
                "package": {"name": name, "ecosystem": "PyPI"},
                "ranges": [{"type": "ECOSYSTEM", "events": events[name]}],
            }
            body = {"vulns": [{"id": advisory, "aliases": [], "summary": "s", "affected": [affected]}]}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def osv_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OSV)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    finally:
        server.shutdown()
        server.server_close()


def test_pip_audit_against_a_stand_in_osv(osv_url: str, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv(audit.OSV_URL_ENV, osv_url)
    monkeypatch.setattr(audit, "PROBES", {"osv": audit.PROBES["osv"]})  # PyPI's is not on loopback
    allow = tmp_path / "allow.toml"
    monkeypatch.setattr(audit, "ALLOW_FILE", allow)
    lock = tmp_path / "lock.txt"
    lock.write_text("requests==2.0.0 \\\n    --hash=sha256:00\nurllib3==2.0.0\nnumpy==2.4.6\n")

    assert audit.main([str(lock)]) == 1
    out = capsys.readouterr().out
    assert "✗ requests 2.0.0: GHSA-aaaa: fixed in 2.0.1 (make lock UPGRADE_PACKAGE=requests)" in out
    assert "✗ urllib3 2.0.0: PYSEC-2026-2: no fixed release yet" in out
    assert "audit: 3 packages of" in out and "against OSV's data: vulnerabilities to fix" in out

    lock.write_text("urllib3==2.0.0\nnumpy==2.4.6\n")
    until = datetime.date.today() + datetime.timedelta(days=7)
    allow.write_text(
        f'[[allow]]\nid = "PYSEC-2026-2"\npackage = "urllib3"\nreason = "no fix yet"\n'
        f"added = {datetime.date.today()}\nuntil = {until}\n"
    )
    assert audit.main([str(lock)]) == 0
    out = capsys.readouterr().out
    assert f"! urllib3 2.0.0: PYSEC-2026-2 accepted until {until} (no fix yet)" in out
    assert "no known vulnerability to fix" in out
