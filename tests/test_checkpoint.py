"""checkpoint=: every evaluation of f kept in SQLite; a rerun after a crash (a SIGKILLed
child process) evaluates only what is missing and returns the same bits; a file is never
answered from for another f, x or options."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

import numdiffx as nd
from numdiffx._core import api

from . import _checkpoint_child as child

ROOT = Path(__file__).resolve().parents[1]
X = child.X


def _lines(log: Path, word: str) -> int:
    return log.read_text().split().count(word) if log.exists() else 0


def _run_child(mode: str, checkpoint: Path, out: Path, log: Path, delay: float,
               kill_after: int | None = None) -> int:
    """Run the child; with ``kill_after``, SIGKILL it (its whole process group: a dask
    cluster with it) once that many evaluations are done. Returns its exit status."""
    env = dict(os.environ, NDX_LOG=str(log), NDX_DELAY=str(delay),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "tests._checkpoint_child", mode,
                             str(checkpoint), str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    if kill_after is not None:
        while _lines(log, "done") < kill_after and proc.poll() is None:
            assert time.monotonic() < deadline, "the child never got that far"
            time.sleep(0.005)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    if kill_after is None:
        assert proc.returncode == 0, err.decode()
    return proc.returncode


def _crash_and_resume(tmp_path: Path, mode: str, delay: float, kill_after: int,
                      total: int) -> tuple[np.ndarray, int, int]:
    """(result of the rerun, evaluations the first run finished, evaluations the rerun
    made). ``total``: the evaluations an uninterrupted run makes."""
    ck, out, log1, log2 = (tmp_path / n for n in ("ck.sqlite", "J.npy", "1.log", "2.log"))
    code = _run_child(mode, ck, out, log1, delay, kill_after=kill_after)
    assert code == -signal.SIGKILL, "the child finished before it was killed"
    assert not out.exists()
    finished = _lines(log1, "done")
    assert 0 < finished < total
    _run_child(mode, ck, out, log2, 0.0)
    return np.load(out), finished, _lines(log2, "start")


def test_sigkill_mid_loop_then_rerun_evaluates_only_the_missing_points(tmp_path):
    total = 1 + 2 * X.size  # f(x) and central differences
    J, finished, again = _crash_and_resume(tmp_path, "loop", 0.03, 6, total)
    assert again <= total - finished + 2
    expected = nd.jacobian(child._value, X, evaluation="loop")
    assert J.dtype == expected.dtype and np.array_equal(J, expected)


def test_sigkill_mid_batched_then_rerun_evaluates_only_the_missing_chunks(tmp_path):
    total = 2 * X.size  # perturbed rows (the child's log leaves out x itself)
    J, finished, again = _crash_and_resume(tmp_path, "batched", 0.03, 8, total)
    assert again <= total - finished + 2
    expected = nd.jacobian(child.simulate_batched, X, evaluation="batched", chunk_size=4)
    assert np.array_equal(J, expected)


@pytest.fixture
def counted():
    calls = []

    def f(x, a=1.0):
        calls.append(np.array(x, copy=True))
        return a * np.array([np.sin(x).sum(), (x ** 2 * np.cos(x)).sum(), x[0] * x[-1]])

    return f, calls


def _same(r1, r2):
    for name in ("value", "error", "step", "status"):
        a, b = getattr(r1, name), getattr(r2, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert np.array_equal(a, b, equal_nan=True), name
    assert r1.nfev == r2.nfev


@pytest.mark.parametrize("op", ["jacobian", "gradient", "hessian", "jvp", "hvp", "derivative",
                                "adaptive", "batched", "tuple", "grad=", "sparsity"])
def test_rerun_answers_from_the_record_with_the_same_bits(tmp_path, counted, op):
    f, calls = counted
    ck = tmp_path / "ck.sqlite"
    s = lambda x: f(x)[1]  # noqa: E731
    v = np.cos(X)
    b = lambda xs: np.stack([f(r) for r in xs])  # noqa: E731
    run = {
        "jacobian": lambda **k: nd.jacobian(f, X, full_output=True, **k),
        "gradient": lambda **k: nd.gradient(s, X, full_output=True, **k),
        "hessian": lambda **k: nd.hessian(s, X, full_output=True, **k),
        "jvp": lambda **k: nd.jvp(f, X, v, full_output=True, **k)[1],
        "hvp": lambda **k: nd.hvp(s, X, v, full_output=True, **k),
        "derivative": lambda **k: nd.derivative(np.sin, X, full_output=True, **k),
        "adaptive": lambda **k: nd.jacobian(f, X, step=nd.steps.adaptive(), full_output=True,
                                            **k),
        "batched": lambda **k: nd.jacobian(b, X, evaluation="batched", chunk_size=5,
                                           full_output=True, **k),
        "tuple": lambda **k: nd.jacobian(lambda x, y: f(x * y), X, 2 * X, argnums=(0, 1),
                                         full_output=True, **k),
        "grad=": lambda **k: nd.hessian(None, X, grad=lambda x: f(x)[:1] * x,
                                        full_output=True, **k),
        "sparsity": lambda **k: nd.jacobian(lambda x: f(x)[0] * x, X, sparsity="detect",
                                            sparse_output=False, full_output=True, **k),
    }[op]
    plain = run()
    first = run(checkpoint=ck)
    calls.clear()
    again = run(checkpoint=str(ck))
    results = (plain, first, again) if op != "tuple" else zip(plain, first, again)
    for r in ([results] if op != "tuple" else results):
        _same(r[0], r[1])
        _same(r[0], r[2])
    if op != "derivative":  # np.sin is not counted
        assert len(calls) <= 2 * (op == "tuple") + 1  # f(x) only: it fingerprints f


def test_a_partial_record_is_completed_evaluating_only_the_missing_points(tmp_path,
                                                                          counted):
    f, calls = counted
    ck = tmp_path / "ck.sqlite"
    expected = nd.jacobian(f, X, evaluation="loop")

    def breaks_at_x5(x, a=1.0):
        if x[5] != X[5]:
            raise RuntimeError("the solver diverged")
        return f(x, a)

    breaks_at_x5.__qualname__ = f.__qualname__  # the same f, with a bug: fixed below
    with pytest.raises(RuntimeError, match="the solver diverged") as info:
        nd.jacobian(breaks_at_x5, X, evaluation="loop", checkpoint=ck)
    if sys.version_info >= (3, 11):
        assert "10 evaluation(s) of f are saved in checkpoint=" in str(info.value.__notes__)
    calls.clear()
    J = nd.jacobian(f, X, evaluation="loop", checkpoint=ck)
    assert np.array_equal(J, expected)
    assert len(calls) == 1 + 2 * X.size - 10  # f(x) and the 6 points not on record


def test_executor_failure_keeps_what_finished_and_says_how_to_resume(tmp_path, counted):
    f, calls = counted
    ck = tmp_path / "ck.sqlite"

    def breaks_at_x3(x, a=1.0):
        if x[3] != X[3]:
            raise ZeroDivisionError("the solver diverged")
        return f(x, a)

    breaks_at_x3.__qualname__ = f.__qualname__
    with ThreadPoolExecutor(max_workers=2) as pool:
        with pytest.raises(nd.EvaluationError,
                           match=r"ZeroDivisionError: the solver diverged\. (\d+) evaluation\(s\) "
                                 r"of f are saved in checkpoint=.*rerun the same call") as info:
            nd.jacobian(breaks_at_x3, X, executor=pool, chunk_size=1, checkpoint=ck)
        saved = int(str(info.value).split("diverged. ")[1].split()[0])
        assert 0 < saved <= 2 * X.size - 2
        calls.clear()
        J = nd.jacobian(f, X, executor=pool, chunk_size=1, checkpoint=ck)
    assert len(calls) == 1 + 2 * X.size - saved
    assert np.array_equal(J, nd.jacobian(f, X))
    with pytest.raises(nd.EvaluationError, match="pass checkpoint=PATH to keep finished"):
        with ThreadPoolExecutor(max_workers=2) as pool:
            nd.jacobian(breaks_at_x3, X, executor=pool, chunk_size=1)


@pytest.mark.parametrize("evaluation", ["loop", "batched"])
def test_executor_tasks_are_resumed_from_the_record(tmp_path, counted, evaluation):
    f, calls = counted
    g = f if evaluation == "loop" else (lambda xs: np.stack([f(r) for r in xs]))
    ck = tmp_path / "ck.sqlite"
    with ThreadPoolExecutor(max_workers=3) as pool:
        plain = nd.jacobian(g, X, evaluation=evaluation, executor=pool, chunk_size=3,
                            full_output=True)
        first = nd.jacobian(g, X, evaluation=evaluation, executor=pool, chunk_size=3,
                            checkpoint=ck, full_output=True)
        calls.clear()
        again = nd.jacobian(g, X, evaluation=evaluation, executor=pool, chunk_size=3,
                            checkpoint=ck, full_output=True)
    _same(plain, first)
    _same(plain, again)
    assert len(calls) == 1


def test_another_f_x_options_or_argument_is_never_answered_from_the_record(tmp_path, counted):
    f, calls = counted
    ck = tmp_path / "ck.sqlite"
    n_points = 2 * X.size

    def evaluations(fun, x, *args, **kw):
        calls.clear()
        out = nd.jacobian(fun, x, *args, evaluation="loop", checkpoint=ck, **kw)
        return out, len(calls)

    J, _ = evaluations(f, X)
    assert evaluations(f, X)[1] == 1

    def other(x, a=1.0):  # another f: equal at x, not elsewhere
        calls.append(x)
        return np.array([np.sin(x).sum(), (x ** 2 * np.cos(x)).sum(), x[0] * x[-1]]) + (
            x - X).sum()

    J_other, count = evaluations(other, X)
    assert count == 1 + n_points and not np.array_equal(J_other, J)
    assert np.array_equal(J_other, nd.jacobian(other, X, evaluation="loop"))
    for x, kw, args in [(X + 1e-3, {}, ()), (X.astype(np.float32), {}, ()),
                        (X, {"method": "forward"}, ()), (X, {"step": 1e-4}, ()),
                        (X, {"method": nd.central(order=4)}, ()), (X, {}, (2.0,))]:
        out, count = evaluations(f, x, *args, **kw)
        plain = nd.jacobian(f, x, *args, evaluation="loop", **kw)
        assert np.array_equal(out, plain)
        assert count == 1 + plain.shape[-1] * (2 if kw.get("method") != "forward" else 1) * (
            2 if isinstance(kw.get("method"), nd.Stencil) else 1), (x.dtype, kw, args)


def test_the_same_call_with_a_changed_f_is_refused_saying_why(tmp_path, counted):
    f, calls = counted
    ck = tmp_path / "ck.sqlite"
    nd.jacobian(f, X, evaluation="loop", checkpoint=ck)

    def changed(x, a=1.0):  # the same name, another value at x: a changed simulator
        return 1.5 * f(x, a)

    changed.__qualname__ = f.__qualname__
    with pytest.raises(ValueError, match=r"holds evaluations of this same call .* f\(x\) is "
                                         r"not the value stored .* f has changed, or is not "
                                         r"deterministic .* Delete the file"):
        nd.jacobian(changed, X, evaluation="loop", checkpoint=ck)


def test_bad_checkpoint_arguments_are_refused(tmp_path, counted):
    f, _ = counted
    with pytest.raises(TypeError, match="checkpoint must be None or the path of a file"):
        nd.jacobian(f, X, checkpoint=3)
    with pytest.raises(ValueError, match="checkpoint must name a file"):
        nd.jacobian(f, X, checkpoint="")
    with pytest.raises(ValueError, match="is a directory; pass a file path"):
        nd.jacobian(f, X, checkpoint=tmp_path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ValueError, match="cannot be used as an evaluation record"):
        nd.jacobian(f, X, checkpoint=junk)


def test_checkpoint_takes_the_engine_and_plain_calls_keep_the_fast_lane(tmp_path, counted,
                                                                       monkeypatch):
    f, _ = counted
    taken = []
    real = api.fast_jacobian

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        taken.append(out is not api.NOT_TAKEN)
        return out

    monkeypatch.setattr(api, "fast_jacobian", spy)
    plain = nd.jacobian(f, X)
    assert taken == [True]
    assert np.array_equal(nd.jacobian(f, X, checkpoint=tmp_path / "ck.sqlite"), plain)
    assert np.array_equal(nd.jacobian(f, X, progress=False), plain)
    assert taken == [True]


@pytest.mark.parametrize("evaluation", ["auto", "loop"])
def test_every_backend_reads_back_its_own_arrays(tmp_path, xb, evaluation):
    """The default evaluation (vmap on torch and jax) and the loop: a rerun restores
    arrays of x's library, dtype and device, with the same bits."""
    xp = xb.xp
    x = xb.asarray(np.linspace(0.2, 1.4, 6))
    f = lambda x: xp.stack([xp.sum(xp.sin(x)), xp.sum(x * x)])  # noqa: E731
    ck = tmp_path / "ck.sqlite"
    plain = nd.jacobian(f, x, evaluation=evaluation, full_output=True)
    nd.jacobian(f, x, evaluation=evaluation, checkpoint=ck)
    again = nd.jacobian(f, x, evaluation=evaluation, checkpoint=ck, full_output=True)
    assert type(again.value) is type(plain.value) and again.value.dtype == plain.value.dtype
    assert str(again.value.device) == str(plain.value.device)
    assert np.array_equal(xb.to_numpy(again.value), xb.to_numpy(plain.value))
    assert again.nfev == plain.nfev


def test_checks_pass_the_checkpoint_through(tmp_path, counted):
    f, calls = counted
    ck = tmp_path / "ck.sqlite"
    ref = lambda x: np.stack([np.cos(x), 2 * x * np.cos(x) - x ** 2 * np.sin(x),  # noqa: E731
                              np.eye(X.size)[0] * x[-1] + np.eye(X.size)[-1] * x[0]])
    assert nd.gradcheck(f, (X,), reference=ref, checkpoint=ck)
    calls.clear()
    assert nd.gradcheck(f, (X,), reference=ref, checkpoint=ck, progress=False)
    assert len(calls) <= 2


def _saved(checkpoint: Path) -> int:
    with closing(sqlite3.connect(checkpoint)) as conn:
        return int(conn.execute("SELECT COALESCE(SUM(points), 0) FROM evaluations").fetchone()[0])


@pytest.mark.slow
def test_sigkill_mid_dask_run_then_rerun_with_a_worker_killed(tmp_path, monkeypatch):
    """The child's run on its own dask cluster is killed (the client process and the
    cluster with it); the rerun, on a new cluster, loses a worker mid-run: dask
    reschedules its task, and the result is the uninterrupted one."""
    pytest.importorskip("distributed")
    total, workers = 1 + 2 * X.size, 2
    ck, out, log1, log2 = (tmp_path / n for n in ("ck.sqlite", "J.npy", "1.log", "2.log"))
    code = _run_child("dask", ck, out, log1, 0.15, kill_after=6)
    assert code == -signal.SIGKILL
    finished, saved = _lines(log1, "done"), _saved(ck)
    # lost: at most the results on their way from the workers (one a worker); f(x) is
    # evaluated by the client and never recorded
    assert finished - 1 - workers <= saved < finished
    monkeypatch.setenv("NDX_KILL_WORKER", "3")
    _run_child("dask", ck, out, log2, 0.15)
    assert np.array_equal(np.load(out), nd.jacobian(child._value, X, evaluation="loop"))
    # f(x), the points not on record, and the killed worker's: the point it had in flight
    # and, at most, the one it had just finished whose value had not reached the client
    # (the kill comes as the worker starts a point: the adversarial moment)
    assert _lines(log2, "start") <= total - saved + 2
    assert _saved(ck) == total - 1


def test_cross_check_and_gradgradcheck_pass_the_checkpoint_through(tmp_path):
    ck = tmp_path / "ck.sqlite"
    alt = lambda x: 1 - 2 / (np.exp(2 * x) + 1)  # noqa: E731
    first = nd.cross_check({"numpy": np.tanh, "numpy_alt": alt}, X, checkpoint=ck)
    again = nd.cross_check({"numpy": np.tanh, "numpy_alt": alt}, X, checkpoint=ck,
                           progress=False)
    assert first.passed and again.passed and str(first) == str(again)
    with closing(sqlite3.connect(ck)) as conn:  # each implementation and step kept apart
        assert conn.execute("SELECT COUNT(*) FROM sections").fetchone()[0] == 4
    torch = pytest.importorskip("torch")
    x = torch.linspace(0.2, 1.4, 4, dtype=torch.float64, requires_grad=True)
    assert nd.gradgradcheck(lambda x: (x.sin() * x).sum(), (x,), checkpoint=ck)
    assert nd.gradgradcheck(lambda x: (x.sin() * x).sum(), (x,), checkpoint=ck)
    with pytest.raises(TypeError, match="checkpoint must be None or the path"):
        nd.gradcheck(lambda x: x.sin(), (x,), checkpoint=1)


def test_checkpoint_under_jit_is_refused_saying_why(tmp_path):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    f = lambda x: jnp.sin(x)  # noqa: E731

    @jax.jit
    def jac(x):
        return nd.jacobian(f, x, checkpoint=str(tmp_path / "ck.sqlite"))

    with pytest.raises(ValueError, match="under jax.jit there are none"):
        jac(jnp.linspace(0.2, 1.4, 4))
