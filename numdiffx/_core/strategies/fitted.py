"""Steps fitted to the function: a pilot search per variable, then one pass.

``steps.fitted()`` does not assume that each variable varies on the scale
``max(|x_i|, 1)``. It looks, per variable and all variables at once, for a step at which
the plan's own stencil is consistent: the value at ``h`` and at ``2 h`` differ by a
truncation that the round-off of f cannot explain and that is small beside the value
(Gill, Murray, Saunders & Wright 1983, "Computing forward-difference intervals for
numerical optimization"; the relative-condition tests of their algorithm FD, here for
any stencil). Where the step is too large (the points disagree, leave the domain or
return NaN) it shrinks tenfold; where round-off hides the truncation it grows tenfold.
From the accepted pair it estimates ``M = |f^(p+q)|`` and takes the step minimising
``C_t M h**p + C_r eps_f / h**q``, kept within what the pilot verified. The noise level
``eps_f`` of f is its round-off, or measured along one direction by Moré and Wild's
ECnoise (2011) with ``noise="estimate"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from numdiffx.backends import to_host

from ..result import Status
from ..stencils import Stencil
from .base import AbstractStepRule, positive_finite
from .nominal import DEFAULT_AUTO, one_pass

__all__ = ["ecnoise", "fitted"]

#: the truncation of the value at h must stay below this fraction of the value
TRUNCATION_LIMIT = 0.1
#: a truncation below this many round-offs is not measured
MEASURABLE = 4.0
#: the pilot's step moves by this factor per trial
FACTOR = 10.0


@dataclass(frozen=True)
class fitted(AbstractStepRule):  # noqa: N801 - public lower-case constructor
    """Per-variable steps fitted to f from pilot evaluations (curvature and noise).

    For parameters far from 1 (a variance of 1e-5, positions of 1e-6, coefficients of
    covariates in the thousands), where ``auto``'s ``max(|x_i|, 1)`` is the wrong scale.
    Per variable the pilot evaluates the operation's own stencil at ``h`` and ``2 h``
    (starting at ``auto``'s step), and moves ``h`` tenfold until the two are consistent
    (their difference, the truncation, is measurable above round-off and below 10% of
    the value; NaN or a point outside f's domain shrinks the step), then takes the step
    that minimises ``C_t M h**p + C_r eps_f / h**q`` with ``M`` from that difference,
    within ``[h/16, 2h]``. The operation then runs once at those steps, with the error
    estimate of one-step rules; a variable for which no consistent step was found gets
    status NONSMOOTH.

    Reuse: ``r.step`` (``full_output=True``) holds the steps chosen, one per element of
    x; ``step=nd.steps.fixed(r.step)`` evaluates another point (an optimiser's next
    iterate, a bootstrap replicate) at the same steps with no pilot.

    Cost, in evaluations of f: the pilot takes ``2 (len(stencil) - 1)`` per variable per
    trial (4 for central first derivatives and Hessian diagonals; a Hessian's pilot reads
    its diagonal only), usually one or two trials; ``derivative`` moves all elements at
    once, so there it is per trial, not per element. ``noise="estimate"`` adds 8 per
    ECnoise try (at most 3). Then the operation's own cost (``2 n**2 + 1`` for a central
    Hessian). Supported by :func:`numdiffx.derivative`, :func:`numdiffx.jacobian`,
    :func:`numdiffx.gradient` and :func:`numdiffx.hessian`, with real stencils (for the
    complex step the step hardly matters: use ``'auto'``).

    Parameters
    ----------
    noise : float, "estimate" or None
        Relative noise level of f (``1e-8`` for 8 significant digits), ``"estimate"``
        to measure it (Moré and Wild's ECnoise along one direction), or None for the
        round-off ``eps`` of the dtype.
    typical : float
        Typical magnitude of the inputs: the pilot starts at ``auto(typical=...)``'s step.
    trials : int
        Most pilot trials per variable (each moves the step tenfold).

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> def loglike(t):                    # a Gaussian variance of 4e-5, at its MLE
    ...     v = t[0]
    ...     return -50 * np.log(v) - 50 * 4e-5 / v if v > 0 else -np.inf
    >>> x = np.array([4e-5])
    >>> r = nd.hessian(loglike, x, step=nd.steps.fitted(), full_output=True)
    >>> exact = -50 / 4e-5**2
    >>> bool(abs(r.value[0, 0] / exact - 1) < 1e-7), r.status_names.tolist(), r.nfev
    (True, [['SUCCESS']], 19)
    >>> nd.hessian(loglike, x, full_output=True).status_names.tolist()    # auto: 3e-4
    [['NON_FINITE']]
    >>> again = nd.hessian(loglike, x * 1.01, step=nd.steps.fixed(r.step))  # no pilot
    """

    noise: float | str | None = None
    typical: float = 1.0
    trials: int = 6

    supports = frozenset({"elementwise", "columns", "hessian"})

    def __post_init__(self) -> None:
        if isinstance(self.noise, str):
            if self.noise != "estimate":
                raise ValueError(f"fitted(noise=...) must be a relative noise level, "
                                 f"'estimate' or None; got {self.noise!r}.")
        elif self.noise is not None:
            object.__setattr__(self, "noise", positive_finite(
                self.noise, "fitted(noise=...)", "fitted(noise=1e-8)"))
        object.__setattr__(self, "typical", positive_finite(
            self.typical, "fitted(typical=...)", "fitted(typical=1.0)"))
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 1:
            raise ValueError(f"fitted(trials=...) must be an int >= 1; got {self.trials!r}.")

    def run(self, plan: Any, *, full_output: bool) -> Any:
        """The pilot, then one pass of ``plan`` at the fitted steps."""
        p = plan.problem
        xp = p.xp
        if not (xp.isdtype(p.x_flat.dtype, "real floating")
                and xp.isdtype(p.f0.dtype, "real floating")):
            raise ValueError("steps.fitted() needs real floating inputs and a real-valued f; "
                             "use step='auto' for complex inputs or outputs.")
        method = plan.estimate_method()
        if getattr(plan, "complex_step", False) or not isinstance(method, Stencil):
            raise ValueError("steps.fitted() needs a real stencil: the complex step has no "
                             "round-off to balance (its step hardly matters); use "
                             "step='auto' with method='complex_step'.")
        noise = self._noise(plan)
        fit = pilot(plan, method, noise, self)
        h = plan.to_steps(fit.steps)
        out = one_pass(plan, h, full_output=False)
        if full_output:
            out.error, out.status = _estimate(plan, method, h, out.value, out.status, fit)
        return out

    def _noise(self, plan: Any) -> np.ndarray:
        """Absolute noise of f per output, (M,) on the host."""
        p = plan.problem
        f_abs = np.abs(to_host(p.f0).astype(np.float64))
        level = max(p.eps, self.noise) if isinstance(self.noise, float) else p.eps
        base = level * np.maximum(f_abs, np.finfo(np.float64).tiny)
        if self.noise == "estimate":
            measured = ecnoise(p, self.typical)
            base = np.maximum(base, np.where(np.isfinite(measured), measured, 0.0))
        return base


@dataclass
class Fit:
    """What the pilot found, per variable (host arrays): the steps, the measured
    ``|f^(p+q)|`` (NaN where the truncation was below round-off: ``bound`` is then its
    largest value), the absolute noise, and whether no consistent step was found."""

    steps: Any  # (n,) in the problem's namespace
    m_est: np.ndarray
    bound: np.ndarray
    eps_f: np.ndarray
    failed: np.ndarray


def _estimate(plan: Any, method: Stencil, h: Any, values: Any, status: Any, fit: Fit
              ) -> tuple[Any, Any]:
    """(error, status): for the pilot's entries (one per variable) the truncation
    ``C_t M h**p`` from the measured ``M`` and the round-off ``C_r eps_f / h**q``, each
    doubled; for the others (a Hessian's mixed entries) the one-step estimate of
    :mod:`.diagnose`. Variables without a consistent step are NONSMOOTH; a Hessian's
    mixed entries inherit their diagonals' failures."""
    from .diagnose import ROUNDOFF_SAFETY, TRUNCATION_SAFETY, one_step_estimate

    p = plan.problem
    xp, n = p.xp, p.n
    h_var = np.abs(to_host(plan.estimate_steps(h)).astype(np.float64)[:n, 0])
    pp, q = method.order, method.deriv
    m = np.where(np.isnan(fit.m_est), fit.bound, fit.m_est)
    with np.errstate(all="ignore"):
        trunc = 2.0 * method.truncation_constant * m * h_var**pp
        roundoff = 2.0 * method.roundoff_constant * fit.eps_f / h_var**q
    e, m_out = plan.n_entries, values.shape[1]
    mask = np.zeros((e, 1), dtype=bool)
    mask[:n, 0] = np.isfinite(trunc) & np.isfinite(roundoff)
    full_t, full_r = np.zeros((e, 1)), np.zeros((e, 1))
    full_t[:n, 0] = np.where(mask[:n, 0], trunc, 0.0)
    full_r[:n, 0] = np.where(mask[:n, 0], roundoff, 0.0)

    def dev(a: np.ndarray) -> Any:
        return xp.asarray(np.broadcast_to(a, (e, m_out)), dtype=values.dtype, device=p.device)

    known = (xp.asarray(np.broadcast_to(mask, (e, m_out)), device=p.device), dev(full_t),
             dev(full_r))
    assert TRUNCATION_SAFETY >= 2.0 and ROUNDOFF_SAFETY >= 2.0  # the prior's, elsewhere
    error, status = one_step_estimate(xp, method, p.eps, plan.estimate_steps(h), values,
                                      status, xp.abs(plan.f0_entries()), [],
                                      plan.output_scale(values), known)
    if fit.failed.any():
        bad = np.isin(plan.entry_variables(), np.flatnonzero(fit.failed))
        mark = xp.expand_dims(xp.asarray(bad, device=p.device), 1)
        ok = status == int(Status.SUCCESS)
        status = xp.where(mark & ok, xp.asarray(int(Status.NONSMOOTH), dtype=xp.int8,
                                                device=p.device), status)
    return plan.inherit(error, status)


def pilot(plan: Any, method: Stencil, noise: np.ndarray, rule: fitted) -> Fit:
    """The steps per variable and what was measured (:class:`Fit`). The pilot reads the
    first ``n`` entries: one per variable (a column, an element, a Hessian's
    diagonal)."""
    p = plan.problem
    xp, n = p.xp, p.n
    pp, q = method.order, method.deriv
    c_r, c_t = method.roundoff_constant, method.truncation_constant
    eps_f = np.full(n, float(np.max(noise, initial=0.0)))
    if plan.name == "elementwise":  # every element is its own function
        eps_f = np.broadcast_to(noise, (n,)).astype(np.float64)
    x = np.abs(to_host(p.real_x).astype(np.float64))
    with np.errstate(all="ignore"):
        h = DEFAULT_AUTO.scale_for(p.eps, method) * np.maximum(x, rule.typical)
    rho = p.eps ** (pp / (pp + q))  # the best relative error one step can reach
    done = np.zeros(n, dtype=bool)
    failed = np.zeros(n, dtype=bool)
    h_opt = h.copy()
    moved = np.zeros(n, dtype=np.int8)  # last move: -1 shrink, +1 grow
    best = np.full(n, np.inf)  # the best (truncation + round-off) / value seen, its step
    best_h = h.copy()
    rows_all = np.arange(n)
    m_fit = np.full(n, np.nan)  # |f^(p+q)| measured at the accepted step
    m_bound = np.full(n, np.nan)  # its largest value where the truncation was not seen
    for _ in range(rule.trials):
        act = rows_all[~done]
        if act.size == 0:
            break
        v1, ok1, h1 = _values(plan, h, act)
        v2, ok2, h2 = _values(plan, 2 * h, act)
        ok = ok1 & ok2 & (h1 > 0) & (h2 > 0)
        with np.errstate(all="ignore"):
            value = np.max(np.abs(v1), axis=1)
            trunc = np.max(np.abs(v2 - v1), axis=1) / (2.0**pp - 1.0)
            round_off = c_r * eps_f[act] / h1**q
            rel = (trunc + round_off) / value
        better = ok & (rel < best[act])
        best[act] = np.where(better, rel, best[act])
        best_h[act] = np.where(better, h[act], best_h[act])
        measurable = trunc > MEASURABLE * round_off
        shrink = ~ok | (measurable & (trunc > TRUNCATION_LIMIT * value))
        accept_m = ok & measurable & ~shrink
        lost = ~ok | measurable  # below: truncation hidden by round-off
        zero = ~lost & (value <= MEASURABLE * round_off)  # a derivative ~0 at this step
        grow = ~lost & ~zero & (round_off > rho * value)
        accept_r = ~lost & ~zero & ~grow  # round-off already small; no truncation seen
        with np.errstate(all="ignore"):
            m_est = trunc / (c_t * h1**pp)
            opt = (q * c_r * eps_f[act] / (pp * c_t * m_est)) ** (1.0 / (pp + q))
        ha = h[act]
        opt = np.where(np.isfinite(opt) & (opt > 0), opt, ha)
        # the optimum must lie where the pilot measured M: far below h, measure again
        # there (a covariate in the thousands: truncation 1e-4 at the first accepted h)
        far = accept_m & (opt < ha / 16.0)
        shrink = shrink | far
        accept_m = accept_m & ~far
        h_new = ha.copy()
        h_new[accept_m] = np.minimum(opt[accept_m], 2.0 * ha[accept_m])
        h_new[accept_r] = 2.0 * ha[accept_r]
        finished = accept_m | accept_r | zero
        with np.errstate(all="ignore"):
            hidden = MEASURABLE * round_off / (c_t * h1**pp)
        m_fit[act] = np.where(accept_m, m_est, m_fit[act])
        m_bound[act] = np.where(accept_r | zero, hidden, m_bound[act])
        # a move that reverses the last one: no consistent step at tenfold resolution
        flip = (shrink & (moved[act] > 0)) | (grow & (moved[act] < 0))
        h_opt[act] = np.where(finished, h_new, h_opt[act])
        # (the window of consistent steps is narrower than tenfold: the best step seen
        # serves unless even it had an error bound above 10% of the value)
        failed[act] = flip & ~(best[act] <= TRUNCATION_LIMIT)
        h_opt[act[flip]] = best_h[act[flip]]
        done[act] = finished | flip
        smaller = np.where(far, np.maximum(opt, ha / FACTOR**2), ha / FACTOR)
        h[act] = np.where(finished | flip, ha,
                          np.where(shrink, smaller, np.where(grow, ha * FACTOR, ha)))
        moved[act] = np.where(shrink, -1, np.where(grow, 1, moved[act])).astype(np.int8)
    left = ~done  # trials ran out: the best step seen, and no claim of success
    h_opt[left] = best_h[left]
    failed |= left
    dev = p.device
    return Fit(xp.asarray(h_opt, dtype=p.dtype, device=dev), m_fit, m_bound, eps_f, failed)


def _values(plan: Any, h: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """(values (len(rows), M), finite and successful per row, steps used) on the host."""
    p = plan.problem
    hd = plan.to_steps(p.xp.asarray(h, dtype=p.dtype, device=p.device))
    d = plan.evaluate(hd, rows)
    values = to_host(d.values).astype(np.float64)
    ok = np.all(to_host(d.status) == int(Status.SUCCESS), axis=1) & np.all(
        np.isfinite(values), axis=1)
    used = np.abs(to_host(hd).astype(np.float64))[rows]
    return values, ok, used


def ecnoise(problem: Any, typical: float = 1.0, points: int = 8,
            tries: int = 3) -> np.ndarray:
    """Noise level of f per output (absolute), measured from ``points`` evaluations along
    one fixed direction (Moré & Wild, "Estimating computational noise", SIAM J. Sci.
    Comput. 33, 2011): the k-th differences of f at equally spaced points are noise
    once their signs alternate and the estimates ``sqrt(gamma_k mean(diff_k**2))``
    agree within a factor 4 for three consecutive k. NaN where no estimate settled."""
    xp = problem.xp
    x = to_host(problem.real_x).astype(np.float64)
    n = x.shape[0]
    f0 = to_host(problem.f0).astype(np.float64)
    direction = np.where(np.mod(np.arange(n) * 0.6180339887498949, 1.0) < 0.5, 1.0, -1.0)
    scale = np.maximum(np.abs(x), typical)
    delta = 1e-6
    half = points // 2
    ks = np.array([k for k in range(-half, points - half + 1) if k != 0], dtype=np.float64)
    result = np.full(f0.shape, np.nan)
    for _ in range(tries):
        pts = x[None, :] + (ks[:, None] * delta) * (direction * scale)[None, :]
        y = to_host(problem.evaluator(xp.asarray(pts, dtype=problem.dtype,
                                                 device=problem.device)))
        table = np.insert(np.asarray(y, dtype=np.float64), half, f0, axis=0)  # (m+1, M)
        level, verdict = _ecnoise_table(table)
        result = np.where(np.isnan(result), level, result)
        if np.all(verdict == 0):
            break
        # 2: f constant at this spacing (grow it); 3: the smooth part shows (shrink it)
        delta = delta * 100.0 if np.any(verdict == 2) else delta / 100.0
    return result


def _ecnoise_table(fval: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ECnoise on (m+1, M) values: (noise per output, 0 settled / 2 too small / 3 too
    large)."""
    m = fval.shape[0] - 1
    out = np.full(fval.shape[1], np.nan)
    verdict = np.full(fval.shape[1], 3, dtype=np.int64)
    for c in range(fval.shape[1]):
        f = fval[:, c].copy()
        if not np.all(np.isfinite(f)):
            continue
        fmax, fmin = np.max(f), np.min(f)
        if (fmax - fmin) > 0.1 * max(abs(fmax), abs(fmin)):
            continue  # the spacing is far too large
        levels, signs, gamma = np.zeros(m), np.zeros(m, dtype=bool), 1.0
        for j in range(m):
            f = f[1:] - f[:-1]
            if j == 0 and np.all(f == 0):
                verdict[c] = 2
                break
            gamma *= 0.5 * (j + 1) / (2 * (j + 1) - 1)
            levels[j] = math.sqrt(gamma * float(np.mean(f * f)))
            signs[j] = bool(np.min(f) < 0 < np.max(f))
        if verdict[c] == 2:
            continue
        for k in range(m - 2):
            lo, hi = np.min(levels[k:k + 3]), np.max(levels[k:k + 3])
            if hi <= 4 * lo and signs[k]:
                out[c], verdict[c] = levels[k], 0
                break
    return out, verdict
