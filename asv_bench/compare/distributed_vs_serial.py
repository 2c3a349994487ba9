"""Distributed evaluation vs serial, the same Jacobian: ``executor=`` a dask cluster.

An expensive black box -- ``time.sleep(0.05)`` plus cheap math, i.e. a 50 ms simulation
call -- with n = 32 inputs; central differences need f(x) plus 64 perturbed points
(65 calls, about 3.25 s serially). Compared: wall time of ``nd.jacobian`` serially vs with
``executor=`` a ``dask.distributed.Client`` on a local loopback cluster, and whether the
two Jacobians are identical:

- W = 1, 2 worker PROCESSES with one thread each (real parallel hardware: this
  machine has ``os.cpu_count()`` cores, printed below);
- W = 4, 8 worker THREADS in one in-process cluster (no sockets at all): the calls
  sleep (they wait, as a call to a remote simulator or a licence-bound solver would),
  so they overlap beyond the core count. This shows the scheduling overhead, not extra
  compute: a CPU-bound f would stop scaling at the core count.

speed-up = serial / distributed; efficiency = speed-up / W (target >= 0.8). f(x) is
evaluated once on the client before the perturbed points are sent (65 = 1 + 64 calls),
so the ideal speed-up is 65 / (1 + ceil(64 / W)), e.g. 1.97 at W = 2. Each cluster is
warmed with one small Jacobian before timing; each timing is the best of 2 runs.

Run: PYTHONPATH=. python asv_bench/compare/distributed_vs_serial.py (from the repository
root: the worker processes must import this numdiffx)
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

import numdiffx as nd

N = 32
DELAY = 0.05


def expensive(x: np.ndarray) -> np.ndarray:
    """A 50 ms black box R^32 -> R^4 (sleep stands for the simulation's cost)."""
    time.sleep(DELAY)
    return np.array([np.sin(x).sum(), (x ** 2).sum(), np.prod(np.cos(x)), x @ x[::-1]])


def best_of(runs: int, fn) -> tuple[float, np.ndarray]:
    best, out = math.inf, None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    assert out is not None
    return best, out


def main() -> None:
    from distributed import Client, LocalCluster

    x = np.linspace(-1.0, 1.0, N)
    calls = 1 + 2 * N
    print(f"black box: sleep {DELAY * 1e3:.0f} ms + cheap math, n = {N}, central differences "
          f"({calls} calls); machine cores: os.cpu_count() = {os.cpu_count()}")
    serial, J_local = best_of(2, lambda: nd.jacobian(expensive, x))
    print(f"serial: {serial:.3f} s ({serial / calls * 1e3:.1f} ms per call)")
    print(f"{'W':>3} {'kind':>9} {'wall s':>8} {'speed-up':>9} {'ideal':>6} {'efficiency':>10} "
          f"{'identical':>9}")
    for workers, processes in ((1, True), (2, True), (4, False), (8, False)):
        kind = "processes" if processes else "threads"
        cluster = (LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                host="127.0.0.1", dashboard_address=":0", silence_logs=50)
                   if processes else
                   LocalCluster(n_workers=1, threads_per_worker=workers, processes=False,
                                dashboard_address=":0", silence_logs=50))  # in-process
        with cluster, Client(cluster) as client:
            nd.jacobian(expensive, x[:2], executor=client)  # warm: ship f, start the pools
            wall, J = best_of(2, lambda: nd.jacobian(expensive, x, executor=client))
        speedup = serial / wall
        ideal = calls / (1 + math.ceil(2 * N / workers))
        print(f"{workers:>3} {kind:>9} {wall:>8.3f} {speedup:>9.2f} {ideal:>6.2f} "
              f"{speedup / workers:>10.2f} {str(np.array_equal(J, J_local)):>9}")


if __name__ == "__main__":
    main()
