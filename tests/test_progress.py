"""progress=: a display with the time left on long computations (stderr is not a TTY
here: plain lines), nothing on short ones, a callable, and tqdm where it is installed."""

from __future__ import annotations

import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

import numdiffx as nd
from numdiffx._core.evaluation import progress as progress_module

X = np.linspace(0.2, 1.4, 8)
N_POINTS = 2 * X.size  # central differences


def f(x):
    return np.array([np.sin(x).sum(), (x ** 2 * np.cos(x)).sum()])


def slow(x):
    time.sleep(0.01)
    return f(x)


def test_short_calls_show_nothing(capsys):
    nd.jacobian(f, X)
    nd.jacobian(f, X, full_output=True)
    nd.jacobian(lambda xs: np.stack([f(r) for r in xs]), X, evaluation="batched",
                chunk_size=4)
    nd.hessian(lambda x: f(x)[0], X)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("engine", [False, True])
def test_long_calls_show_progress_past_the_threshold(capsys, monkeypatch, engine):
    monkeypatch.setattr(progress_module, "THRESHOLD", 0.05)
    monkeypatch.setattr(progress_module, "LINE_EVERY", 0.02)
    J = nd.jacobian(slow, X, evaluation="loop", full_output=engine)
    err = capsys.readouterr().err
    # a line with the count, the share and the time left, then the closing line
    assert f"/{N_POINTS} evaluations of f (" in err and "left" in err
    assert err.rstrip().splitlines()[-1].startswith(f"numdiffx: {N_POINTS} evaluations of f in")
    assert np.array_equal(J.value if engine else J, nd.jacobian(f, X, evaluation="loop"))


def test_progress_true_shows_at_once_and_false_never(capsys, monkeypatch):
    nd.jacobian(f, X, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"numdiffx: 1/{N_POINTS} evaluations of f (6%), ")
    assert lines[-1] == f"numdiffx: {N_POINTS} evaluations of f in 0.0 s"
    monkeypatch.setattr(progress_module, "THRESHOLD", 0.0)
    nd.jacobian(slow, X, evaluation="loop", progress=False)
    nd.gradient(lambda x: slow(x)[0], X, progress=False, step=nd.steps.adaptive())
    assert capsys.readouterr().err == ""


def test_a_callable_receives_done_and_total(capsys):
    seen = []
    J = nd.jacobian(f, X, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(k, N_POINTS) for k in range(1, N_POINTS + 1)]
    assert np.array_equal(J, nd.jacobian(f, X))
    seen.clear()
    b = lambda xs: np.stack([f(r) for r in xs])  # noqa: E731
    nd.jacobian(b, X, evaluation="batched", chunk_size=4, progress=lambda *a: seen.append(a))
    assert seen == [(4, N_POINTS), (8, N_POINTS), (12, N_POINTS), (16, N_POINTS)]
    assert capsys.readouterr().err == ""


def test_restored_evaluations_are_counted_apart(capsys, tmp_path):
    ck = tmp_path / "ck.sqlite"
    nd.jacobian(f, X, checkpoint=ck, progress=False)
    nd.jacobian(f, X, checkpoint=ck, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"numdiffx: 1/{N_POINTS} evaluations of f (6%; 1 from the "
                               "checkpoint), ")
    assert lines[-1] == (f"numdiffx: {N_POINTS} evaluations of f ({N_POINTS} from the "
                         "checkpoint) in 0.0 s")


def test_bad_progress_is_refused():
    with pytest.raises(TypeError, match="progress must be None .* True, False or a callable"):
        nd.jacobian(f, X, progress="yes")


def test_tqdm_draws_the_bar_on_a_terminal(monkeypatch):
    bars = []

    class FakeBar:
        def __init__(self, total, **kwargs):
            self.total, self.n, self.closed = total, 0, False
            bars.append(self)

        def update(self, k):
            self.n += k

        def refresh(self):
            pass

        def close(self):
            self.closed = True

    class Terminal:
        def isatty(self):
            return True

        def write(self, text):
            raise AssertionError("the bar draws, not the line")

        def flush(self):
            pass

    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", types.SimpleNamespace(tqdm=FakeBar))
    monkeypatch.setattr(sys, "stderr", Terminal())
    nd.jacobian(f, X, progress=True)
    assert len(bars) == 1 and bars[0].total == N_POINTS and bars[0].n == N_POINTS
    assert bars[0].closed


def test_without_tqdm_a_terminal_gets_one_line_rewritten(monkeypatch):
    written = []

    class Terminal:
        def isatty(self):
            return True

        def write(self, text):
            written.append(text)

        def flush(self):
            pass

    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails: not installed
    monkeypatch.setattr(sys, "stderr", Terminal())
    monkeypatch.setattr(progress_module, "THRESHOLD", 0.0)
    nd.jacobian(slow, X, evaluation="loop", progress=True)
    assert written[0].startswith("\rnumdiffx: ") and written[0].endswith("\x1b[K")
    assert written[-1].endswith("\n") and "evaluations of f in" in written[-1]


def test_a_child_process_logs_plain_lines_on_stderr(tmp_path):
    """Not a TTY (a batch job's log): lines on stderr, none on stdout."""
    script = tmp_path / "run.py"
    script.write_text(
        "import time, numpy as np, numdiffx as nd\n"
        "from numdiffx._core.evaluation import progress\n"
        "progress.THRESHOLD, progress.LINE_EVERY = 0.05, 0.05\n"
        "def f(x):\n    time.sleep(0.01)\n    return np.sin(x)\n"
        "nd.jacobian(f, np.linspace(0, 1, 8), evaluation='loop')\n")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path, env={"PYTHONPATH": str(root), "PATH": ""}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) >= 2 and all(line.startswith("numdiffx: ") for line in lines)
    assert "\r" not in done.stderr and lines[-1].startswith("numdiffx: 16 evaluations of f in")


def test_executor_tasks_are_counted_as_they_complete(capsys):
    from concurrent.futures import ThreadPoolExecutor

    seen = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        J = nd.jacobian(f, X, executor=pool, chunk_size=4,
                        progress=lambda done, total: seen.append((done, total)))
    assert sorted(seen) == [(4, N_POINTS), (8, N_POINTS), (12, N_POINTS), (16, N_POINTS)]
    assert np.array_equal(J, nd.jacobian(f, X))
    assert capsys.readouterr().err == ""
