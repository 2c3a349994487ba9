"""Standard errors of fitted statistical models: accuracy, evaluations and time per rule.

What ``asv_bench/compare/standard_errors_vs_statsmodels.py`` prints side by side with
statsmodels' ``approx_hess3`` / ``approx_hess_cs`` and numdifftools, tracked by asv for
numdiffx's own rules: per model of ``_stat_models.py`` (statsmodels' log-likelihood at
its MLE, exact Hessian analytic or by jax) and per rule, the largest relative error of
the standard errors, the number of evaluations of f, whether every entry is SUCCESS, and
the time of one Hessian. Skipped (asv's NotImplementedError) without statsmodels, and
for the two time-series models without jax.
"""

from __future__ import annotations

import warnings

import numpy as np

import numdiffx as nd

from ._stat_models import BUILDERS, model, se_error

RULES = {
    "auto": {},
    "fitted": {"step": nd.steps.fitted()},
    "adaptive": {"step": nd.steps.adaptive()},
    "complex_step": {"method": "complex_step"},
}


class StandardErrors:
    """One fitted model, one rule: ``nd.hessian(loglike, mle, full_output=True)``."""

    params = [list(BUILDERS), list(RULES)]
    param_names = ["model", "rule"]
    timeout = 300

    def setup(self, name, rule):
        try:
            self.model = model(name)
        except ImportError as err:  # statsmodels (or jax for a reference) missing
            raise NotImplementedError(str(err)) from err
        self.kwargs = RULES[rule]
        self.result = self._run()

    def _run(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return nd.hessian(self.model.f, self.model.x, full_output=True, **self.kwargs)
            except (ValueError, TypeError):  # refused (complex step on a non-holomorphic f)
                return None

    def time_hessian(self, name, rule):
        self._run()

    def track_se_rel_error(self, name, rule):
        r = self.result
        return float("inf") if r is None else se_error(r.value, self.model)

    track_se_rel_error.unit = "rel error"  # type: ignore[attr-defined]

    def track_nfev(self, name, rule):
        return 0 if self.result is None else int(self.result.nfev)

    track_nfev.unit = "evaluations"  # type: ignore[attr-defined]

    def track_all_success(self, name, rule):
        r = self.result
        return 0 if r is None else int(np.all(np.asarray(r.status)
                                              == int(nd.Status.SUCCESS)))

    track_all_success.unit = "bool"  # type: ignore[attr-defined]
