"""Distributed evaluation vs serial: ``executor=`` on a black box that waits (issue 8).

f sleeps 5 ms per call (a remote simulator, a licence-bound solver), n = 16, central
differences: f(x) on the client plus 32 perturbed points. Serial vs a
``concurrent.futures.ThreadPoolExecutor`` and a ``dask.distributed`` in-process cluster
with 4 threads (skipped without dask). ``track_speedup`` = serial / distributed, measured
in one run. The process-cluster version is ``asv_bench/compare/distributed_vs_serial.py``.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import numdiffx as nd

from ._common import require_module

N, DELAY, WORKERS = 16, 0.005, 4


def black_box(x):
    time.sleep(DELAY)
    return np.array([np.sin(x).sum(), (x**2).sum(), x @ x[::-1]])


class Executor:
    params = [["serial", "threads", "dask"]]
    param_names = ["executor"]
    timeout = 120

    def setup(self, executor):
        self.x = np.linspace(-1.0, 1.0, N)
        self.closers = []
        if executor == "serial":
            self.executor = None
        elif executor == "threads":
            self.executor = ThreadPoolExecutor(max_workers=WORKERS)
            self.closers.append(self.executor.shutdown)
        else:
            distributed = require_module("distributed")
            cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=WORKERS,
                                               processes=False, dashboard_address=":0",
                                               silence_logs=50)
            self.executor = distributed.Client(cluster)
            self.closers += [cluster.close, self.executor.close]
        self.run()  # warm: ship f, start the pools

    def teardown(self, executor):
        for close in reversed(self.closers):
            close()

    def run(self):
        return nd.jacobian(black_box, self.x, executor=self.executor)

    def time_jacobian(self, executor):
        self.run()

    def track_speedup(self, executor):
        t0 = time.perf_counter()
        nd.jacobian(black_box, self.x)
        serial = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.run()
        return serial / (time.perf_counter() - t0)

    track_speedup.unit = "serial / distributed"  # type: ignore[attr-defined]
