"""executor=: perturbed points evaluated on a thread pool or a dask cluster (loopback only)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import numdiffx as nd

X = np.linspace(0.2, 1.4, 7)


def black_box(x):
    """Module-level (picklable) vector function R^7 -> R^3."""
    return np.array([np.sin(x).sum(), (x ** 2 * np.cos(x)).sum(), np.exp(x[0] * x[-1])])


def batched_box(x):
    return np.stack([black_box(row) for row in x])


def fails_when_x3_moves(x):
    if x[3] != X[3]:
        raise ZeroDivisionError("the solver diverged")
    return black_box(x)


class Flaky:
    """Fails the first ``fails`` calls that move x[1] (a transient failure), then works."""

    def __init__(self, fails: int) -> None:
        self.fails = fails

    def __call__(self, x):
        if x[1] != X[1] and self.fails > 0:
            self.fails -= 1
            raise OSError("worker lost")
        return black_box(x)


@pytest.fixture(scope="module")
def pool():
    with ThreadPoolExecutor(max_workers=3) as ex:
        yield ex


@pytest.mark.parametrize("method", ["central", "forward", nd.central(order=4), "complex_step"])
@pytest.mark.parametrize("chunk_size", [None, 1, 5])
def test_thread_pool_jacobian_identical_to_local(pool, method, chunk_size):
    local = nd.jacobian(black_box, X, method=method)
    remote = nd.jacobian(black_box, X, method=method, executor=pool, chunk_size=chunk_size)
    np.testing.assert_array_equal(remote, local)


def test_thread_pool_other_operations_identical(pool):
    v = np.cos(X)
    np.testing.assert_array_equal(nd.hessian(black_box, X, executor=pool),
                                  nd.hessian(black_box, X))
    np.testing.assert_array_equal(nd.jvp(black_box, X, v, executor=pool)[1],
                                  nd.jvp(black_box, X, v)[1])
    s = lambda x: np.sum(np.sin(x) * x)  # noqa: E731
    np.testing.assert_array_equal(nd.gradient(s, X, executor=pool), nd.gradient(s, X))
    np.testing.assert_array_equal(nd.hvp(s, X, v, executor=pool), nd.hvp(s, X, v))
    local = nd.jacobian(batched_box, X, evaluation="batched")
    remote = nd.jacobian(batched_box, X, evaluation="batched", executor=pool, chunk_size=4)
    np.testing.assert_array_equal(remote, local)


def test_executor_counts_every_evaluation(pool):
    res = nd.jacobian(black_box, X, executor=pool, full_output=True)
    assert res.nfev == 1 + 2 * X.size


def test_failing_task_names_the_points_and_chains_the_cause(pool):
    with pytest.raises(nd.EvaluationError,
                       match=r"points .* \(perturbing flat input elements \[3\]\): "
                             r"ZeroDivisionError: the solver diverged") as info:
        nd.jacobian(fails_when_x3_moves, X, executor=pool, chunk_size=2)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_retries_recover_from_transient_failures():
    with ThreadPoolExecutor(max_workers=1) as ex:  # one worker: the failures are ordered
        J = nd.jacobian(Flaky(fails=2), X, executor=ex, chunk_size=1, retries=2)
        np.testing.assert_array_equal(J, nd.jacobian(black_box, X))
        with pytest.raises(nd.EvaluationError, match="after 2 attempts: OSError: worker lost"):
            nd.jacobian(Flaky(fails=5), X, executor=ex, chunk_size=1, retries=1)


def test_bad_executor_and_retries_are_refused():
    with pytest.raises(TypeError, match="executor must have a submit"):
        nd.jacobian(black_box, X, executor=4)
    with pytest.raises(ValueError, match="retries must be a non-negative int"):
        nd.jacobian(black_box, X, executor=None, retries=-1)


# -- dask.distributed: a real local cluster of 2 worker processes on loopback -----------
@pytest.fixture(scope="module")
def dask_client():
    import socket

    distributed = pytest.importorskip("distributed")
    # Hold dask's default dashboard port while the cluster starts: every port must be
    # picked free (":0"), or another program on the machine breaks the suite.
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", 8787))
        blocker.listen()
    except OSError:  # something else holds it already: the same situation
        pass
    try:
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=":0",
                                           silence_logs=50)
    finally:
        blocker.close()
    client = distributed.Client(cluster, timeout=60)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.mark.slow
def test_dask_cluster_jacobian_identical_to_local(dask_client):
    assert sum(dask_client.nthreads().values()) == 2
    np.testing.assert_array_equal(nd.jacobian(black_box, X, executor=dask_client),
                                  nd.jacobian(black_box, X))
    # cloudpickle ships lambdas and closures to the worker processes
    scale = 3.0
    g = lambda x: scale * np.tanh(x)  # noqa: E731
    np.testing.assert_array_equal(nd.jacobian(g, X, executor=dask_client, chunk_size=3),
                                  nd.jacobian(g, X))


@pytest.mark.slow
def test_dask_worker_failure_raises_naming_the_chunk(dask_client):
    with pytest.raises(nd.EvaluationError,
                       match=r"perturbing flat input elements \[3\]\): ZeroDivisionError"):
        nd.jacobian(fails_when_x3_moves, X, executor=dask_client, chunk_size=2)
