"""The delta study as asv benchmarks: per network x dtype x stencil, the error of the best
fixed step, of ``auto`` and of ``adaptive`` (``track_*``), and the main job's wall time.

One ``delta_sweep`` (the CLI's default grid plus complex step, ~2 s) is computed in
``setup_cache``; each tracked number is read from it. The network is the report's
5-128-128-128-5 MLP at x of shape (100, 5) (the report: "JacrevFinite: Finite Difference
approach to replacing PyTorch Autograd", B. Hendrata, 2024); the full error-vs-delta table
is ``numdiffx study delta``.
"""

from __future__ import annotations

from numdiffx.studies import delta_sweep


def _best_fixed(records):
    fixed = [r for r in records if isinstance(r.delta, float) and r.max_error == r.max_error]
    return min(fixed, key=lambda r: r.max_error)


class DeltaStudyErrors:
    params = (["relu", "tanh"], ["float64", "float32"],
              ["forward", "backward", "central", "complex_step"])
    param_names = ["activation", "dtype", "method"]
    rows = 100
    timeout = 300
    smoke_overrides = {"rows": 4}  # tests/test_asv_smoke.py runs the code path small

    def setup_cache(self):
        return delta_sweep(rows=self.rows)

    def setup(self, records, activation, dtype, method):
        if method == "complex_step" and activation == "relu":
            raise NotImplementedError("complex step is not valid for ReLU")
        group = [r for r in records if (r.activation, r.dtype, r.method) ==
                 (activation, dtype, method)]
        self.best = _best_fixed(group)
        self.auto = next(r for r in group if r.delta == "auto")
        self.adaptive = next(r for r in group if r.delta == "adaptive")

    def track_best_fixed_error(self, records, activation, dtype, method):
        """max |J - J_exact| at the best of the fixed steps 1e-1 ... 1e-10."""
        return self.best.max_error

    track_best_fixed_error.unit = "abs error"  # type: ignore[attr-defined]

    def track_best_fixed_delta(self, records, activation, dtype, method):
        return float(self.best.delta)

    track_best_fixed_delta.unit = "step"  # type: ignore[attr-defined]

    def track_auto_error(self, records, activation, dtype, method):
        return self.auto.max_error

    track_auto_error.unit = "abs error"  # type: ignore[attr-defined]

    def track_adaptive_error(self, records, activation, dtype, method):
        return self.adaptive.max_error

    track_adaptive_error.unit = "abs error"  # type: ignore[attr-defined]

    def track_adaptive_nfev(self, records, activation, dtype, method):
        return self.adaptive.nfev

    track_adaptive_nfev.unit = "points"  # type: ignore[attr-defined]


class DeltaStudy:
    """``numdiffx study delta``'s default run (numpy, 144 Jacobians, per-sample pattern),
    the README's main job. Target (issue 17): <= 20 s on 2 cores."""

    rows = 100
    timeout = 300
    smoke_overrides = {"rows": 3}  # tests/test_asv_smoke.py runs the code path small

    def time_main_job(self):
        delta_sweep(methods=("forward", "backward", "central"), rows=self.rows)

    def peakmem_main_job(self):
        delta_sweep(methods=("forward", "backward", "central"), rows=self.rows)


class DeltaStudyDense:
    """The same run evaluated as the report's JacrevFinite does (``dense=True``: one
    perturbed copy of the whole input per element, ~100x the network work): the engine's
    cost on dense batched Jacobians."""

    rows = 100
    timeout = 600
    smoke_overrides = {"rows": 3}  # tests/test_asv_smoke.py runs the code path small

    def time_main_job_dense(self):
        delta_sweep(methods=("forward", "backward", "central"), dense=True, rows=self.rows)
