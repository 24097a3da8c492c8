"""Progress reporting: the `Progress` protocol the engine's long functions take, its null and
nested forms, the ETA clock, and the CLI's bar on stderr.

Engine functions take a `Progress` (a `rsviz.jobs.Job` in the app, a `StderrProgress` in the
CLI, or `NullProgress`) and call `report(...)` and `check_cancel()` at each step.
"""

from __future__ import annotations

import sys
import time
import weakref
from typing import Any, Callable, Protocol


class Progress(Protocol):
    """What long-running engine functions report to."""

    def report(self, done: float, total: float | None = None, message: str = "",
               partial: Any = None) -> None: ...

    def check_cancel(self) -> None: ...


class NullProgress:
    """A Progress that ignores reports and is never cancelled."""

    def report(self, done: float, total: float | None = None, message: str = "",
               partial: Any = None) -> None:
        pass

    def check_cancel(self) -> None:
        pass


class SubProgress:
    """A Progress for one part of a larger job: the part's fraction done fills a share of
    its parent's progress, and cancel requests are forwarded.

    A report (done, total) of the part becomes `parent.report(offset + share·done/total,
    parent_total, text)`; reports without a total are dropped.

    Args:
        parent: the job's Progress.
        offset: where the part starts, in the parent's units.
        share: how much of the parent's total the whole part covers.
        parent_total: the parent's total (None: the parent keeps its own).
        message: the parent's message: a fixed string, a function of the part's message,
            or None to pass the part's message through.
    """

    def __init__(self, parent: Progress, offset: float = 0.0, share: float = 1.0,
                 parent_total: float | None = 1.0,
                 message: str | Callable[[str], str] | None = None) -> None:
        self.parent, self.offset, self.share = parent, offset, share
        self.parent_total, self.message = parent_total, message

    def report(self, done: float, total: float | None = None, message: str = "",
               partial: Any = None) -> None:
        if not total:
            return
        fraction = min(1.0, max(0.0, done / total))
        text = (message if self.message is None else self.message(message)
                if callable(self.message) else self.message)
        self.parent.report(self.offset + fraction * self.share, self.parent_total, text)

    def check_cancel(self) -> None:
        self.parent.check_cancel()


class OffsetProgress:
    """A Progress for the last part of a count: `offset` units already done and not reported
    (e.g. CERTIFY's n0 votes before its N), so the bar counts to the real total."""

    def __init__(self, parent: Progress, offset: float, unit: str = "forward passes") -> None:
        self.parent, self.offset, self.unit = parent, offset, unit

    def report(self, done: float, total: float | None = None, message: str = "",
               partial: Any = None) -> None:
        if total is None:
            self.parent.report(self.offset + done, None, message, partial)
            return
        done, total = self.offset + done, self.offset + total
        self.parent.report(done, total, f"{done:,.0f} / {total:,.0f} {self.unit}", partial)

    def check_cancel(self) -> None:
        self.parent.check_cancel()


def format_eta(seconds: float | None) -> str:
    """'1 min 05 s', '12 s' or '—'."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "—"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


class Clock:
    """done/total bookkeeping with an ETA from the average rate since the first report;
    `stop()` freezes the elapsed time (a finished job shows its duration)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.stopped: float | None = None
        self.done = 0.0
        self.total: float | None = None

    def stop(self) -> None:
        if self.stopped is None:
            self.stopped = time.monotonic()

    def update(self, done: float, total: float | None) -> None:
        self.done = float(done)
        if total is not None:
            self.total = float(total)

    @property
    def elapsed(self) -> float:
        return (self.stopped or time.monotonic()) - self.started

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, max(0.0, self.done / self.total))

    @property
    def eta(self) -> float | None:
        frac = self.fraction
        if frac is None or frac <= 0:
            return None
        return self.elapsed * (1 - frac) / frac


class StderrProgress:
    """Progress with ETA on stderr, for the CLI.

    On a terminal: one bar redrawn in place (tqdm's when tqdm is installed, else a line
    rewritten after a carriage return, at most 10 times a second), ended by a newline when the
    work is done or `close()` is called. Piped or redirected (not a TTY): a new line at most
    every 0.5 s, what a log file wants. `interactive` forces either."""

    _open: "weakref.WeakSet[StderrProgress]" = weakref.WeakSet()

    def __init__(self, label: str = "", stream: Any = None,
                 interactive: bool | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.clock = Clock()
        self._last = 0.0
        if interactive is None:
            isatty = getattr(self.stream, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive
        self._bar: Any = None  # tqdm's bar, on a terminal
        self._drawn = False  # a \r line is on screen, not yet ended
        self._closed = False  # the bar was ended (a later unfinished report starts a new one)

    def _text(self, message: str) -> str:
        frac = self.clock.fraction
        if frac is None:
            bar = f"{self.clock.done:.0f}"
        else:
            filled = int(frac * 24)
            bar = f"[{'#' * filled}{'.' * (24 - filled)}] {100 * frac:5.1f}%"
        return (f"{self.label} {bar} elapsed {format_eta(self.clock.elapsed)} "
                f"ETA {format_eta(self.clock.eta)} {message}").strip()

    def report(self, done: float, total: float | None = None, message: str = "",
               partial: Any = None) -> None:
        self.clock.update(done, total)
        finished = self.clock.total is not None and self.clock.done >= self.clock.total
        if self.interactive:
            self._draw(message, finished)
            return
        now = time.monotonic()
        if now - self._last < 0.5 and not finished:
            return
        self._last = now
        print(self._text(message), file=self.stream, flush=True)

    def _draw(self, message: str, finished: bool) -> None:
        if self._closed and finished:
            return
        self._closed = False
        StderrProgress._open.add(self)
        if self._bar is None and not self._drawn:
            self._bar = _tqdm_bar(self.label, self.clock.total, self.stream)
        if self._bar is not None:
            bar = self._bar
            if self.clock.total is not None and bar.total != self.clock.total:
                bar.total = self.clock.total
            if message:
                bar.set_postfix_str(message, refresh=False)
            bar.update(self.clock.done - bar.n)  # redraws at most every mininterval
        else:
            now = time.monotonic()
            if now - self._last >= 0.1 or finished:
                self._last = now
                import shutil

                width = max(20, shutil.get_terminal_size((120, 24)).columns - 1)
                self.stream.write("\r" + self._text(message)[:width].ljust(width))
                self.stream.flush()
                self._drawn = True
        if finished:
            self.close()

    def close(self) -> None:
        """End the in-place bar with a newline (nothing for line output)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._drawn:
            self.stream.write("\n")
            self.stream.flush()
        self._drawn = False
        self._closed = True
        StderrProgress._open.discard(self)

    @classmethod
    def close_all(cls) -> None:
        """End every bar still drawn (before an error line, so it starts a line of its own)."""
        for progress in list(cls._open):
            progress.close()

    def check_cancel(self) -> None:
        pass


def _tqdm_bar(label: str, total: float | None, stream: Any) -> Any:
    """tqdm's bar when tqdm is installed (it comes with several dependencies), else None."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=label or None, file=stream, unit=" passes", unit_scale=True,
                dynamic_ncols=True, mininterval=0.1, leave=True)
