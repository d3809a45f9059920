"""Progress for long loops: a live bar on a terminal, occasional plain lines in logs (CI).

`progress(...)` takes tqdm's arguments and returns a tqdm, so callers iterate, `update()`,
`set_postfix()` and `set_description()` as usual. Where it draws depends on the output:

- a terminal: tqdm's live bar;
- no terminal (CI, `dvc repro > log`): a plain line at the start, each time another
  `PLAIN_STEP_PERCENT` of the total is done, at least every `PLAIN_INTERVAL_S` seconds when the
  total is unknown, and at the end; no carriage returns, no ANSI codes.

PML_OPS_PROGRESS=1 forces bars, =plain forces plain lines, =0 silences progress.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from tqdm.auto import tqdm
from tqdm.std import tqdm as std_tqdm

ENV = "PML_OPS_PROGRESS"
PLAIN_STEP_PERCENT = 10.0
PLAIN_INTERVAL_S = 30.0
_KNOWN_TOTAL = "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
_UNKNOWN_TOTAL = "{desc}: {n_fmt}{unit} [{elapsed}, {rate_fmt}{postfix}]"


def progress_mode() -> str:
    """'bar', 'plain' or 'off': $PML_OPS_PROGRESS if set, else 'bar' on a terminal, 'plain' if not."""
    forced = os.environ.get(ENV)
    if forced is not None:
        value = forced.strip().lower()
        if value == "plain":
            return "plain"
        return "off" if value in ("0", "false", "no", "off", "") else "bar"
    return "bar" if sys.stderr.isatty() else "plain"


class _NullStream:
    def write(self, _text: str) -> None:
        pass

    def flush(self) -> None:
        pass


class PlainProgress(std_tqdm):
    """tqdm that counts as usual but writes whole lines, and only now and then."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._lines_out = kwargs.get("file") or sys.stderr
        self._next_percent = 0.0
        self._last_line_t = -float("inf")
        self._finished = False
        kwargs.setdefault("mininterval", 0.5)  # how often tqdm offers us a chance to print
        super().__init__(*args, **kwargs)

    def _line(self) -> str:
        fields = self.format_dict
        known = bool(fields["total"])
        fields["bar_format"] = _KNOWN_TOTAL if known else _UNKNOWN_TOTAL
        fields["prefix"] = fields["prefix"] or "progress"
        return self.format_meter(**fields)

    def _emit(self) -> None:
        self._lines_out.write(self._line() + "\n")
        self._lines_out.flush()
        self._last_line_t = time.monotonic()

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if self._finished:
            return True
        if self.total:
            percent = 100.0 * self.n / self.total
            if percent < self._next_percent:
                return True
            while self._next_percent <= percent:
                self._next_percent += PLAIN_STEP_PERCENT
        elif time.monotonic() - self._last_line_t < PLAIN_INTERVAL_S:
            return True
        self._emit()
        return True

    def clear(self, nolock: bool = False) -> None:
        pass  # nothing to erase: lines are final

    def moveto(self, n: int) -> None:
        pass

    def close(self) -> None:
        if self.disable or self._finished:
            return
        if not (self.total and self._next_percent > 100.0):
            self._emit()  # the final count, unless the 100% line is already out
        self._finished = True
        self.fp = _NullStream()  # tqdm's close writes '\n' or '\r' to its stream
        super().close()


def progress(iterable: Any = None, **kwargs: Any) -> tqdm:
    """`tqdm` for `iterable` (or a manual bar with `total=`), drawn as `progress_mode()` says."""
    mode = progress_mode()
    if mode == "plain" and not kwargs.get("disable"):
        return PlainProgress(iterable, **kwargs)
    kwargs.setdefault("disable", mode == "off")
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
