"""Progress of a long computation: evaluations of f done, of how many, and the time left.

The evaluator counts evaluations as they complete (a point in a loop, a chunk, a task)
and tells a :class:`Progress` only when its count reaches :attr:`Progress.due`, a count
the tracker sets from the rate it has seen (a loop runs its points in stretches between
two such counts: nothing is paid per point), and a short computation never shows
anything. ``progress=``:

- ``None`` (default): a display appears once a computation has run longer than
  :data:`THRESHOLD` seconds;
- ``True``: at once; ``False``: never;
- a callable: called as ``progress(done, total)`` after every completed unit, no display.

The display is a tqdm bar when tqdm is installed and stderr is a terminal or a notebook
(tqdm is not a dependency), else a line on stderr: rewritten in place on a terminal,
a new line every :data:`LINE_EVERY` seconds when stderr is a file or a pipe (a log).
``total`` counts the evaluations the plan has announced so far; a step rule that works
in rounds (``adaptive``) announces each round as it starts.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["LINE_EVERY", "THRESHOLD", "Progress", "progress_iv"]

#: Seconds a computation runs before the default progress display appears.
THRESHOLD = 2.0
#: Seconds between two lines of the display when stderr is not a terminal.
LINE_EVERY = 10.0
#: Seconds between two refreshes of a terminal display.
REFRESH = 0.2
_NEVER = sys.maxsize


def progress_iv(progress: object) -> object:
    """``progress=`` checked at the boundary: None, True, False or a callable."""
    if progress is None or isinstance(progress, bool) or callable(progress):
        return progress
    raise TypeError(f"progress must be None (a display when a call runs longer than "
                    f"{THRESHOLD:g} s), True, False or a callable progress(done, total); got "
                    f"{type(progress).__name__}.")


class Progress:
    """Counts the evaluations of one computation; shows or reports them (see module)."""

    __slots__ = ("_closed", "_display", "_last", "_rate_start", "callback", "done", "due", "fresh",
                 "how", "t0", "total")

    def __init__(self, how: object, t0: float | None = None, done: int = 0,
                 total: int = 0) -> None:
        self.how = how
        self.callback: Callable[[int, int], Any] | None = (
            how if callable(how) and not isinstance(how, bool) else None)
        self.t0 = time.monotonic() if t0 is None else t0
        self.done, self.total = 0, total
        self.fresh = 0  # evaluations made here (not restored from a checkpoint): the rate
        self._rate_start = self.t0
        self._display: Any = None
        self._last = 0.0
        self._closed = -1  # the total at which the last display ended
        self.due = _NEVER if how is False else (1 if done == 0 else done)
        if done:
            self.advance(done)

    def expect(self, count: int) -> None:
        """The plan will evaluate ``count`` more points."""
        self.total += count
        self.due = min(self.due, self.done + 1) if count and self._closed >= 0 else self.due
        if self._display is not None:
            self._display.total(max(self.total, self.done))

    def add(self, count: int, restored: bool = False) -> int:
        """:meth:`advance` when :attr:`due` is reached, else only counted (no clock)."""
        if self.done + count >= self.due:
            return self.advance(count, restored)
        self.done += count
        if not restored:
            self.fresh += count
        return self.due

    def advance(self, count: int, restored: bool = False) -> int:
        """``count`` more evaluations completed (``restored``: read from a checkpoint);
        returns :attr:`due`, the count at which to be told again."""
        self.done += count
        if self.how is False:
            return _NEVER
        if not restored:
            self.fresh += count
        elif self.fresh == 0:  # the rate counts from the first evaluation made here
            self._rate_start = time.monotonic()
        if self.callback is not None:
            self.callback(self.done, max(self.total, self.done))
            self.due = self.done + 1
            return self.due
        now = time.monotonic()
        elapsed = now - self.t0
        rate = self.fresh / (now - self._rate_start) if now > self._rate_start else 0.0
        if self._display is None:
            if self.how is not True and elapsed < THRESHOLD:
                # look again when the threshold should have passed, at this rate
                ahead = (THRESHOLD - elapsed) * rate if rate else 1.0
                self.due = self.done + max(1, min(int(ahead), 1 << 20))
                return self.due
            if self._closed == self.total:  # this work's display has ended: no new one
                self.due = self.done + (1 << 20)  # until more is announced
                return self.due
            self._display = _open_display(max(self.total, self.done))
        if self.done >= self.total and self.total:
            self._display.close(self.done, self.done - self.fresh, elapsed)
            self._display, self._closed = None, self.total
            self.t0 = now  # a next round (adaptive) is timed on its own
        elif now - self._last >= self._display.every:
            self._last = now
            self._display.show(self.done, max(self.total, self.done), self.done - self.fresh,
                               elapsed, rate)
        step = max(1, int(rate * self._period()))
        # the last evaluation announced is always told: the display closes there
        self.due = min(self.done + step, self.total) if self.total > self.done else (
            self.done + step)
        return self.due

    def _period(self) -> float:
        return self._display.every if self._display is not None else REFRESH

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        """End the display, if one is shown (a computation that raised)."""
        if getattr(self, "_display", None) is not None:
            self._display.close(self.done, self.done - self.fresh, time.monotonic() - self.t0)
            self._display = None


def _left(done: int, total: int, rate: float) -> str:
    if rate <= 0 or done >= total:
        return ""
    seconds = (total - done) / rate
    return f", about {_duration(seconds)} left"


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _interactive(stream: Any) -> bool:
    """A terminal, or a Jupyter kernel's stream (tqdm draws a widget there)."""
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):
        return False
    return type(stream).__module__.split(".")[0] == "ipykernel"


def _open_display(total: int) -> Any:
    stream = sys.stderr
    if _interactive(stream):
        try:
            from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            return _Bar(tqdm, total)
    return _Line(stream)


class _Bar:
    """A tqdm bar (tqdm computes the rate and the time left itself)."""

    every = REFRESH

    def __init__(self, tqdm: Any, total: int) -> None:
        self._bar = tqdm(total=total, unit="eval", desc="numdiffx: evaluations of f",
                         leave=True)
        self._shown = 0

    def total(self, total: int) -> None:
        self._bar.total = total
        self._bar.refresh()

    def show(self, done: int, total: int, restored: int, elapsed: float, rate: float) -> None:
        if self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._shown)
        self._shown = done

    def close(self, done: int, restored: int, elapsed: float) -> None:
        self._bar.update(done - self._shown)
        self._shown = done
        self._bar.close()


class _Line:
    """A plain line on stderr: in place on a terminal, one line per update in a log."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._tty = _interactive(stream)
        self.every = REFRESH if self._tty else LINE_EVERY

    def total(self, total: int) -> None:
        pass

    def _write(self, text: str, end: str) -> None:
        try:
            self._stream.write(("\r" + text + "\x1b[K" if self._tty else text) + end)
            self._stream.flush()
        except (OSError, ValueError):  # a closed stream must not break the computation
            pass

    def show(self, done: int, total: int, restored: int, elapsed: float, rate: float) -> None:
        kept = f"; {restored} from the checkpoint" if restored else ""
        self._write(f"numdiffx: {done}/{total} evaluations of f ({100 * done // total}%{kept}), "
                    f"{_duration(elapsed)} elapsed{_left(done, total, rate)}",
                    "" if self._tty else "\n")

    def close(self, done: int, restored: int, elapsed: float) -> None:
        kept = f" ({restored} from the checkpoint)" if restored else ""
        self._write(f"numdiffx: {done} evaluations of f{kept} in {_duration(elapsed)}", "\n")
