"""numdiffx's error estimates vs the true errors, over problem x dtype x stencil x point.

``nd.derivative(..., step=nd.steps.adaptive(typical=p.typical, scale_with_x=False),
full_output=True)`` returns an estimate per element; the true error is |value - exact| on
the reference set ``numdiffx.studies.PROBLEMS``. An estimate is honest when it is >= the
true error, and useful when it is not thousands of times larger. Targets: estimate >= true
error on >= 95% of the entries, median estimate / true error <= 30.
Run: python asv_bench/compare/error_estimates_vs_true_error.py
"""

from __future__ import annotations

import numpy as np

import numdiffx as nd
from numdiffx.studies import PROBLEMS

METHODS = {"central": nd.central(), "forward": nd.forward(), "central(order=4)":
           nd.central(order=4)}


def estimates_and_errors(dtype: str, method: object) -> tuple[np.ndarray, np.ndarray]:
    """(true errors, estimates) over every problem's points."""
    true, est = [], []
    for p in PROBLEMS:
        x = np.asarray(p.points, dtype=dtype)
        r = nd.derivative(p.fn(np), x, method=method, full_output=True,
                          step=nd.steps.adaptive(typical=p.typical, scale_with_x=False))
        true.append(np.abs(r.value.astype(np.float64) - p.df(x.astype(np.float64))))
        est.append(np.asarray(r.error, dtype=np.float64))
    return np.concatenate(true), np.concatenate(est)


def main() -> None:
    print("estimate of the error vs the true error (problem x point), steps.adaptive()")
    all_t, all_e = [], []
    for dtype in ("float64", "float32"):
        for name, method in METHODS.items():
            tt, ee = estimates_and_errors(dtype, method)
            ratio = ee[tt > 0] / tt[tt > 0]
            print(f"   {dtype} {name:17s} estimate >= error {np.mean(ee >= tt):6.1%}  "
                  f"estimate/error median {np.median(ratio):7.2f}  min {np.min(ratio):8.2e}  "
                  f"max {np.max(ratio):8.2e}")
            all_t.append(tt)
            all_e.append(ee)
    tt, ee = np.concatenate(all_t), np.concatenate(all_e)
    ratio = ee[tt > 0] / tt[tt > 0]
    print(f"   all {tt.size} entries: estimate >= error {np.mean(ee >= tt):.1%} (target >= 95%),"
          f" median estimate/error {np.median(ratio):.2f} (target <= 30)")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
