"""The delta study as asv ``track_*`` benchmarks: error per method x delta x dtype, nfev."""

from __future__ import annotations

from numdiffx.studies import delta_sweep


class DeltaError:
    """Max error over the per-sample Jacobian blocks of the report's MLP (20 rows)."""

    params = (["relu", "tanh"], ["float64", "float32"],
              ["forward", "backward", "central", "complex_step"],
              [1e-2, 1e-4, 1e-6, 1e-8, "auto"])
    param_names = ["activation", "dtype", "method", "delta"]
    unit = "abs error"
    rows = 20

    def setup(self, activation, dtype, method, delta):
        if method == "complex_step" and activation == "relu":
            raise NotImplementedError("complex step is not valid for ReLU")
        deltas = () if delta == "auto" else (delta,)
        recs = delta_sweep(activations=(activation,), dtypes=(dtype,), methods=(method,),
                           deltas=deltas, include_auto=delta == "auto", rows=self.rows)
        self.record = recs[0]

    def track_block_max_error(self, activation, dtype, method, delta):
        return self.record.block_max_error

    def track_mean_error(self, activation, dtype, method, delta):
        return self.record.mean_error

    def track_nfev(self, activation, dtype, method, delta):
        return self.record.nfev

    track_nfev.unit = "calls"  # type: ignore[attr-defined]

    def track_kinks_crossed(self, activation, dtype, method, delta):
        return self.record.kinks_crossed

    track_kinks_crossed.unit = "kinks"  # type: ignore[attr-defined]
