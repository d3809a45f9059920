"""Known vulnerabilities of the locked packages (`make lint-audit`) or of an image's (`make audit-image`).

    python scripts/audit.py                       # requirements/dev.txt (it holds runtime.txt's pins)
    python scripts/audit.py requirements/runtime.txt
    python scripts/audit.py --image pml-ops:cpu   # `pip freeze --all` inside the image

pip-audit looks every pinned release up in a vulnerability service: PyPI's JSON API
(https://pypi.org/pypi/NAME/VERSION/json), else OSV (https://api.osv.dev), whichever answers first.
A local version label is dropped (torch 2.13.0+cpu is audited as torch 2.13.0: the services know
PyPI's releases only). The audit fails on every vulnerability that requirements/audit-allow.toml
does not accept, saying whether a fixed release exists (then `make lock UPGRADE_PACKAGE=NAME`);
an accepted one needs a reason and dates, and fails again once its `until` date has passed.

Where no service answers, nothing is audited: one line says so and the exit status is 0, or 1 with
PML_OPS_AUDIT=required (the GitHub workflow, whose runners reach both services).
PML_OPS_AUDIT_OSV_URL points at another OSV query endpoint (a mirror) than api.osv.dev's.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LOCK = "requirements/dev.txt"
ALLOW_NAME = "requirements/audit-allow.toml"
ALLOW_FILE = ROOT / ALLOW_NAME
REQUIRED_ENV = "PML_OPS_AUDIT"
OSV_URL_ENV = "PML_OPS_AUDIT_OSV_URL"
OSV_URL = "https://api.osv.dev/v1/query"
PROJECT = "pml-ops"
TIMEOUT_S = 20.0
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(text: str) -> dict[str, str]:
    """name -> version of every `name==version` line (a lock file or `pip freeze`), without the
    project itself and without local version labels."""
    pins = {}
    for line in text.splitlines():
        match = PIN.match(line.strip())
        if match and normalize(match[1]) != PROJECT:
            pins[normalize(match[1])] = match[2].split("+", 1)[0]
    return pins


@dataclass(frozen=True)
class Allowed:
    id: str
    package: str
    reason: str
    added: datetime.date
    until: datetime.date


def read_allow_list(path: Path | None = None) -> list[Allowed]:
    """The accepted vulnerabilities (requirements/audit-allow.toml); a malformed entry is an error
    (ValueError) naming it."""
    path = ALLOW_FILE if path is None else path
    if not path.exists():
        return []
    entries = tomllib.loads(path.read_text()).get("allow", [])
    allowed = []
    for number, entry in enumerate(entries, 1):
        fields = {key: entry.get(key) for key in ("id", "package", "reason", "added", "until")}
        missing = [key for key, value in fields.items() if value in (None, "")]
        dates = [
            key for key in ("added", "until") if key in entry and not isinstance(entry[key], datetime.date)
        ]
        if missing or dates:
            problem = (
                f"missing {', '.join(missing)}" if missing else f"not a date (YYYY-MM-DD): {', '.join(dates)}"
            )
            raise ValueError(f"{path.name}, entry {number}: {problem}")
        allowed.append(Allowed(**{**fields, "package": normalize(fields["package"])}))
    return allowed


def evaluate(
    report: dict, allowed: list[Allowed], today: datetime.date
) -> tuple[list[str], bool, set[Allowed]]:
    """pip-audit's JSON report against the allow-list: (lines to print, failed, entries used)."""
    lines, failed, used = [], False, set()
    for dependency in report.get("dependencies", []):
        name, version = normalize(dependency["name"]), dependency.get("version", "?")
        for vuln in dependency.get("vulns", []):
            ids = {vuln["id"], *vuln.get("aliases", [])}
            label = f"{name} {version}: {' / '.join([vuln['id'], *sorted(ids - {vuln['id']})])}"
            entry = next((a for a in allowed if a.package == name and a.id in ids), None)
            if entry is not None and entry.until >= today:
                used.add(entry)
                lines.append(f"! {label} accepted until {entry.until} ({entry.reason})")
                continue
            failed = True
            if entry is not None:
                used.add(entry)
                lines.append(f"✗ {label}: accepted only until {entry.until}; re-examine it")
            elif vuln.get("fix_versions"):
                fixes = ", ".join(vuln["fix_versions"])
                lines.append(f"✗ {label}: fixed in {fixes} (make lock UPGRADE_PACKAGE={name})")
            else:
                lines.append(
                    f"✗ {label}: no fixed release yet; accept it in {ALLOW_NAME} "
                    "with a reason and dates, or drop the package"
                )
    return lines, failed, used


def _probe_pypi(session, name: str, version: str) -> str | None:
    url = f"https://pypi.org/pypi/{name}/{version}/json"
    response = session.get(url, timeout=TIMEOUT_S)
    if response.status_code != 200 or "vulnerabilities" not in response.json():
        return f"{url} answers HTTP {response.status_code}"
    return None


def _probe_osv(session, name: str, version: str) -> str | None:
    url = os.environ.get(OSV_URL_ENV, OSV_URL)
    query = {"package": {"name": name, "ecosystem": "PyPI"}, "version": version}
    response = session.post(url, json=query, timeout=TIMEOUT_S)
    if response.status_code != 200:
        return f"{url} answers HTTP {response.status_code}"
    return None


PROBES = {"pypi": ("PyPI", _probe_pypi), "osv": ("OSV", _probe_osv)}


def _short(error: Exception) -> str:
    """A network error in a few words: requests' messages run to several hundred characters."""
    import requests

    text = str(error)
    host = re.search(r"host='([^']+)'", text)
    where = host[1] if host else "the service"
    if "NameResolutionError" in text or "Failed to resolve" in text:
        return f"{where} does not resolve"
    if isinstance(error, requests.Timeout):
        return f"{where}: no answer within {TIMEOUT_S:g} s"
    if isinstance(error, requests.ConnectionError):
        return f"{where}: connection failed"
    return f"{type(error).__name__}: {text[:120]}"


def pick_service(pins: dict[str, str]) -> tuple[str | None, list[str]]:
    """The first service that answers for a locked release, and why each other one did not."""
    import requests

    name = "pip" if "pip" in pins else sorted(pins)[0]
    reasons = []
    with requests.Session() as session:
        for service, (title, probe) in PROBES.items():
            try:
                reason = probe(session, name, pins[name])
            except (requests.RequestException, ValueError) as error:
                reason = _short(error)
            if reason is None:
                return service, reasons
            reasons.append(f"{title}: {reason}")
    return None, reasons


def run_pip_audit(pins: dict[str, str], service: str) -> dict:
    """pip-audit's JSON report on `pins` (exact releases, no resolution) from `service`."""
    with tempfile.TemporaryDirectory() as tmp:
        requirements, output = Path(tmp, "requirements.txt"), Path(tmp, "report.json")
        requirements.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
        command = [sys.executable, "-m", "pip_audit", "--disable-pip", "--no-deps", "--strict"]
        command += ["-r", str(requirements), "-s", service, "-f", "json", "-o", str(output)]
        if service == "osv":
            command += ["--osv-url", os.environ.get(OSV_URL_ENV, OSV_URL)]
        command += ["--aliases", "on", "--desc", "off", "--progress-spinner", "off"]
        result = subprocess.run(command, capture_output=True, text=True)
        if not output.exists():  # a fatal error, e.g. a release the service does not know (--strict)
            raise RuntimeError(result.stderr.strip() or result.stdout.strip())
        return json.loads(output.read_text())


def image_freeze(image: str) -> str:
    command = ["docker", "run", "--rm", image, "python", "-m", "pip", "freeze", "--all"]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("requirements", nargs="*", help=f"lock or freeze files (default {DEFAULT_LOCK})")
    parser.add_argument("--image", help="audit `pip freeze --all` inside this Docker image instead")
    args = parser.parse_args(argv)
    if args.image:
        subject, pins = f"image {args.image}", read_pins(image_freeze(args.image))
    else:
        files = args.requirements or [DEFAULT_LOCK]
        subject = ", ".join(files)
        pins = {}
        for file in files:
            pins.update(read_pins((ROOT / file).read_text()))
    try:
        allowed = read_allow_list()
    except (ValueError, tomllib.TOMLDecodeError) as error:
        print(f"audit: {error}", file=sys.stderr)
        return 2

    service, unreachable = pick_service(pins)
    if service is None:
        required = os.environ.get(REQUIRED_ENV) == "required"
        consequence = "failing" if required else f"set {REQUIRED_ENV}=required to fail instead"
        print(
            f"audit: NOT AUDITED ({len(pins)} packages of {subject}): no vulnerability service "
            f"answers from here ({'; '.join(unreachable)}); {consequence}"
        )
        return 1 if required else 0
    try:
        report = run_pip_audit(pins, service)
    except RuntimeError as error:
        print(f"audit: pip-audit could not audit {subject}:\n{error}", file=sys.stderr)
        return 1
    lines, failed, used = evaluate(report, allowed, datetime.date.today())
    for line in lines:
        print(line)
    for entry in sorted(set(allowed) - used, key=lambda a: a.id):
        if entry.package not in pins:
            continue  # not audited here (a package of the dev lock, in an image's audit)
        print(f"note: {entry.id} ({entry.package}) is no longer reported: remove it from {ALLOW_NAME}")
    verdict = "vulnerabilities to fix (above)" if failed else "no known vulnerability to fix"
    print(f"audit: {len(pins)} packages of {subject} against {PROBES[service][0]}'s data: {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
