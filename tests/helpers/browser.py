"""Headless Chromium for tests that look at a page the way a person would."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",  # tests run as root in containers, where the sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
]


def chromium_binary() -> str:
    """$PML_OPS_CHROMIUM, else Debian's chromium (or another Chromium build on PATH).

    Missing is a failure in CI (CI=true), a skip elsewhere."""
    names = (os.environ.get("PML_OPS_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome")
    for name in filter(None, names):
        found = shutil.which(name)
        if found:
            return found
    message = "chromium not found: `apt-get install chromium` (.ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def chromium(page: Path, profile: Path, *args: str, timeout_s: float = 90) -> subprocess.CompletedProcess:
    """Run headless Chromium on a local file with a fresh profile; fail loudly if it fails."""
    command = [chromium_binary(), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0:
        raise AssertionError(f"chromium failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


class DevTools:
    """Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
    commands on fd 3, replies and events on fd 4, NUL-separated JSON), for pages that need
    localStorage set before they load, or a wait for their content, before a screenshot. No driver
    or extra package: the protocol's own messages.

        with DevTools(tmp_path / "profile", 2200, 1100) as page:
            page.open(url, init_script="localStorage.setItem('k', 'v')")
            page.wait_for("document.body.innerText.includes('pml-ops-vae')")
            page.screenshot(path)
    """

    def __init__(self, profile: Path, width: int, height: int, timeout_s: float = 90) -> None:
        self.timeout_s = timeout_s
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()

        def onto_fds_3_and_4() -> None:  # in the child, before exec
            import fcntl

            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (commands_read, replies_write)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        command = [
            chromium_binary(),
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            close_fds=False,
            preexec_fn=onto_fds_3_and_4,
        )
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._next_id = 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call(
            "Emulation.setDeviceMetricsOverride",
            self.session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.call("Page.enable", self.session)

    def __enter__(self) -> DevTools:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(AssertionError, OSError):
            self.call("Browser.close")
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)

    def _message(self, deadline: float) -> dict:
        import json
        import select
        import time

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                raise AssertionError("chromium: no answer over the DevTools pipe in time")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                stderr = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise AssertionError(f"chromium closed the DevTools pipe:\n{stderr[-3000:]}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, **params: object) -> dict:
        """Send one command and return its result (events in between are dropped)."""
        import json
        import time

        self._next_id += 1
        request: dict[str, object] = {"id": self._next_id, "method": method, "params": params}
        if session:
            request["sessionId"] = session
        os.write(self._commands, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise AssertionError(f"chromium: {method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str, init_script: str = "") -> None:
        """Load `url`; `init_script` runs in every document before the page's own scripts."""
        if init_script:
            self.call("Page.addScriptToEvaluateOnNewDocument", self.session, source=init_script)
        self.call("Page.navigate", self.session, url=url)

    def evaluate(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", self.session, expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, settle_s: float = 2.0) -> None:
        """Poll until the JavaScript `expression` is true, then let rendering settle."""
        import time

        deadline = time.monotonic() + self.timeout_s
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                text = self.evaluate("document.body ? document.body.innerText.slice(0, 2000) : ''")
                raise AssertionError(f"page never satisfied {expression!r}; it shows:\n{text}")
            time.sleep(0.5)
        time.sleep(settle_s)

    def screenshot(self, path: Path) -> None:
        import base64

        data = self.call("Page.captureScreenshot", self.session, format="png")["data"]
        path.write_bytes(base64.b64decode(data))
