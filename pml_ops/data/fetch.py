"""Fetch one file from an ordered list of mirrors: local directories, file:// or http(s) URLs."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pml_ops.core.errors import DataError, DownloadError
from pml_ops.core.progress import progress

T = TypeVar("T")

CHUNK = 1 << 16
USER_AGENT = "pml-ops (+https://github.com/pml-ops)"


def _is_url(mirror: str) -> bool:
    return urllib.parse.urlparse(mirror).scheme in ("http", "https", "file")


def _local_dir(mirror: str) -> Path | None:
    """A mirror that is a directory path or a file:// URL, as a Path; None for http(s)."""
    parsed = urllib.parse.urlparse(mirror)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if not _is_url(mirror):
        return Path(mirror).expanduser()
    return None


def _http_get(url: str, timeout_s: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        chunks: list[bytes] = []
        name = url.rsplit("/", 1)[-1]
        with progress(total=total, unit="B", unit_scale=True, desc=name, leave=False) as bar:
            while chunk := response.read(CHUNK):
                chunks.append(chunk)
                bar.update(len(chunk))
    blob = b"".join(chunks)
    if total is not None and len(blob) != total:
        raise DataError(f"download truncated: {len(blob)} of {total} bytes")
    return blob


def read_from_mirror(mirror: str, filename: str, timeout_s: float, retries: int) -> bytes:
    """Read `filename` from one mirror; transient network errors are retried with backoff."""
    local = _local_dir(mirror)
    if local is not None:
        path = local / filename
        if not path.is_file():
            raise DataError(f"no such file {path}")
        return path.read_bytes()

    url = urllib.parse.urljoin(mirror.rstrip("/") + "/", filename)
    for attempt in range(retries + 1):
        try:
            return _http_get(url, timeout_s)
        except urllib.error.HTTPError as error:
            if error.code < 500 or attempt == retries:  # 4xx will not get better by retrying
                raise DataError(f"HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            if attempt == retries:
                reason = getattr(error, "reason", error)
                raise DataError(f"unreachable ({reason})") from None
        time.sleep(min(2.0**attempt, 8.0))
    raise AssertionError("unreachable")  # the loop always returns or raises


def fetch_verified(
    filename: str,
    mirrors: list[str],
    validate: Callable[[bytes], T],
    timeout_s: float = 30.0,
    retries: int = 2,
) -> T:
    """Return `validate(blob)` for the first mirror whose copy of `filename` validates.

    `validate` raises DataError for a bad copy (corrupt, wrong checksum, ...); the next mirror is
    then tried. If none succeeds the error lists every mirror and why it failed.
    """
    failures: list[str] = []
    for mirror in mirrors:
        try:
            return validate(read_from_mirror(mirror, filename, timeout_s, retries))
        except DataError as error:
            failures.append(f"  - {mirror}: {error}")
    tried = "\n".join(failures) if failures else "  (no mirrors configured)"
    raise DownloadError(f"could not obtain a valid copy of {filename}; tried:\n{tried}")
