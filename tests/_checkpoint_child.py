"""A slow black box and a Jacobian of it with checkpoint=, run as a child process by
tests/test_checkpoint.py (which kills it mid-run and runs it again).

    python -m tests._checkpoint_child MODE CHECKPOINT OUT

MODE is loop, batched or dask. Every evaluation appends "start" and "done" lines to the
file named by $NDX_LOG (one per perturbed point; batched calls leave out the unperturbed
sentinel row); $NDX_DELAY is the seconds one point takes. With dask, $NDX_KILL_WORKER=N
SIGKILLs one worker once N evaluations have started.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import numpy as np

X = np.linspace(0.2, 1.4, 8)


def _log(word: str, count: int = 1) -> None:
    path = os.environ.get("NDX_LOG")
    if path and count:
        with open(path, "a") as fh:
            fh.write(f"{word}\n" * count)


def _value(x: np.ndarray) -> np.ndarray:
    return np.array([np.sin(x).sum(), (x ** 2 * np.cos(x)).sum(), np.exp(x[0] * x[-1])])


def simulate(x: np.ndarray) -> np.ndarray:
    """R^8 -> R^3, one point per call, slow."""
    _log("start")
    time.sleep(float(os.environ.get("NDX_DELAY", "0")))
    y = _value(x)
    _log("done")
    return y


def simulate_batched(xs: np.ndarray) -> np.ndarray:
    """The same function on a leading batch axis (as many points as rows, one call)."""
    moved = int(np.sum(np.any(xs != X, axis=1)))
    _log("start", moved)
    time.sleep(float(os.environ.get("NDX_DELAY", "0")) * max(moved, 1))
    y = np.stack([_value(row) for row in xs])
    _log("done", moved)
    return y


def jacobian(mode: str, checkpoint: str | None, executor: object = None) -> np.ndarray:
    import numdiffx as nd

    if mode == "batched":
        return nd.jacobian(simulate_batched, X, evaluation="batched", chunk_size=4,
                           checkpoint=checkpoint, progress=False)
    return nd.jacobian(simulate, X, evaluation="loop", executor=executor,
                       chunk_size=1 if executor is not None else None, checkpoint=checkpoint,
                       progress=False)


def _kill_worker(pid: int, after: int) -> None:
    log = os.environ["NDX_LOG"]
    while not os.path.exists(log) or open(log).read().split().count("start") < after:
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)


def main() -> None:
    mode, checkpoint, out = sys.argv[1:4]
    if mode == "dask":
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=":0",
                          silence_logs=50) as cluster, Client(cluster) as client:
            kill_after = int(os.environ.get("NDX_KILL_WORKER", "0"))
            if kill_after:  # SIGKILL one worker once that many evaluations have started
                pid = next(iter(client.run(os.getpid).values()))
                threading.Thread(target=_kill_worker, args=(pid, kill_after),
                                 daemon=True).start()
            J = jacobian("loop", checkpoint, client)
    else:
        J = jacobian(mode, checkpoint)
    np.save(out, J)


if __name__ == "__main__":
    main()
