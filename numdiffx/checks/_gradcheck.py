"""gradcheck: an analytical Jacobian (autodiff or claimed) against finite differences,
a drop-in for ``torch.autograd.gradcheck`` that does not cry wolf."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from numdiffx._core.evaluation.progress import progress_iv
from numdiffx._core.stencils import Stencil, resolve_method
from numdiffx._core.validation import checkpoint_iv
from numdiffx.steps import AbstractStepRule, fixed, relative

from ._claimed import Claimed
from ._compare import Mismatch, default_tolerances, excess
from ._diagnose import diagnose
from ._messages import failure_message
from ._numerical import (
    Directional,
    NumericalJacobian,
    directional,
    numerical_jacobian,
    refine_columns,
    refine_direction,
    resolve_rule,
    split_rows,
    unmoved_projection,
)
from ._problem import GradcheckError, Problem, Slot, build_problem
from ._trees import flatten_check

__all__ = ["gradcheck"]


@dataclass(frozen=True)
class Options:
    """The validated keywords of one check."""

    eps: float | None
    atol: float
    rtol: float
    nondet_tol: float
    check_undefined_grad: bool
    check_grad_dtypes: bool
    check_batched_grad: bool
    check_batched_forward_grad: bool
    check_forward_ad: bool
    check_backward_ad: bool
    fast_mode: bool
    method: Stencil
    rule: AbstractStepRule
    seed: int
    check_nondiff_outputs: bool
    reference: object
    analytical_name: str = "the backward"
    context: tuple[str, ...] = ()
    checkpoint: object = None  # numdiffx.jacobian's checkpoint= and progress=
    progress: object = None


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}.")
    return bool(value)


def _number(value: object, name: str, allow_none: bool, positive: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            value > 0 if positive else value >= 0) or not math.isfinite(value):
        kind = "> 0" if positive else ">= 0"
        none = "None or " if allow_none else ""
        raise ValueError(f"{name} must be {none}a finite number {kind}; got {value!r}.")
    return float(value)


def validate_flags(check_forward_ad: bool, check_backward_ad: bool, check_batched_grad: bool,
                   check_batched_forward_grad: bool) -> None:
    """torch's consistency rules between the keywords, with the fix in the message."""
    if not (check_forward_ad or check_backward_ad):
        raise ValueError("at least one of check_forward_ad and check_backward_ad must be True "
                         "(there is nothing to check otherwise).")
    if check_batched_grad and not check_backward_ad:
        raise ValueError("check_batched_grad=True needs check_backward_ad=True.")
    if check_batched_forward_grad and not check_forward_ad:
        raise ValueError("check_batched_forward_grad=True needs check_forward_ad=True.")


def make_options(p: Problem, *, eps: object, atol: object, rtol: object, nondet_tol: object,
                 flags: Mapping[str, object], method: object, step: object, seed: object,
                 reference: object, analytical_name: str = "the backward",
                 context: Sequence[str] = ()) -> Options:
    """Validate every keyword; resolve the default tolerances for the problem's dtypes."""
    checked = {name: _flag(value, name) for name, value in flags.items()}
    validate_flags(checked["check_forward_ad"], checked["check_backward_ad"],
                   checked["check_batched_grad"], checked["check_batched_forward_grad"])
    eps_ = _number(eps, "eps", allow_none=True, positive=True)
    if eps_ is not None and step is not None:
        raise ValueError("pass either eps (torch's fixed step) or step (a numdiffx step rule), "
                         "not both.")
    meth = resolve_method(method)
    if not isinstance(meth, Stencil) or meth.deriv != 1:
        raise ValueError(f"gradcheck compares first derivatives from real finite-difference "
                         f"stencils; got method={method!r}. Use 'central' (default), "
                         "'forward', 'backward' or nd.central(order=4).")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int; got {seed!r}.")
    d_atol, d_rtol = default_tolerances(_widest_eps_dtype(p), meth)
    atol_ = _number(atol, "atol", allow_none=True)
    rtol_ = _number(rtol, "rtol", allow_none=True)
    nondet = _number(nondet_tol, "nondet_tol", allow_none=False)
    assert nondet is not None
    return Options(eps_, d_atol if atol_ is None else atol_, d_rtol if rtol_ is None else rtol_,
                   nondet, checked["check_undefined_grad"], checked["check_grad_dtypes"],
                   checked["check_batched_grad"], checked["check_batched_forward_grad"],
                   checked["check_forward_ad"], checked["check_backward_ad"],
                   checked["fast_mode"], meth, resolve_rule(p, eps_, step, meth), seed,
                   checked["check_nondiff_outputs"], reference, analytical_name,
                   tuple(context))


def _widest_eps_dtype(p: Problem) -> str:
    return "float32" if p.check_eps > 1e-10 else "float64"


def analytical_reference(p: Problem, reference: object) -> Any:
    """The object giving the analytical side: autodiff (built with the problem) or claimed."""
    if p.reference is not None:
        return p.reference
    assert callable(reference)
    return Claimed(reference, p)


# ---------------------------------------------------------------------------------------
# comparisons
# ---------------------------------------------------------------------------------------
def _step_description(opts: Options) -> str:
    if opts.eps is not None:
        return f"eps={opts.eps:g}: a fixed step, as torch.autograd.gradcheck"
    if isinstance(opts.rule, relative):
        return ("numdiffx's auto step for the least precise checked dtype, "
                f"{opts.rule.scale:.2g} * max(|x|, 1) per element")
    if isinstance(opts.rule, fixed):
        return f"step={opts.rule.h:g} (fixed)"
    return f"step rule {opts.rule!r}"


def _perturbed(p: Problem) -> str:
    names = ", ".join(s.name for s in p.inputs)
    parts = " (real and imaginary parts separately)" if any(s.is_complex for s in p.inputs) else ""
    unmoved = [s.element(int(j)) for s in p.inputs
               for j in np.flatnonzero(np.isinf(p.host(s.index)))[:3]]
    edge = (f" Elements at +-inf ({', '.join(unmoved[:3])}) are not moved (x + h == x there): "
            "their numerical derivative is 0 by convention (as jax's check_grads), compared "
            "where f(x) is finite, not compared where it is not." if unmoved else "")
    return (f"each element of {names}{parts} is moved alone by +-h, every other input "
            "fixed; nothing else is perturbed. nd.explain_perturbation(f, inputs) lists every "
            "call." + edge)


def _reentrancy(first: dict[Any, np.ndarray | None], second: dict[Any, np.ndarray | None],
                tol: float, analytical_name: str) -> None:
    for key, a in first.items():
        b = second[key]
        if a is None or b is None:
            continue
        diff = float(np.max(np.abs(a - b), initial=0.0))
        if diff > tol or not np.array_equal(np.isnan(a), np.isnan(b)):
            raise GradcheckError(
                f"{analytical_name} is not reentrant: two runs with the same inputs and "
                f"grad_output differ by {diff:.3g} > nondet_tol={tol:g} ({key}); likely "
                "cause: a non-deterministic backward (atomic adds on GPU, index_add or scatter "
                "with repeated indices, random numbers). Pass nondet_tol larger than the "
                "noise if it is expected.")


def _grad_problems(ref: Any) -> None:
    if getattr(ref, "grad_problems", None):
        raise GradcheckError(f"{ref.grad_problems[0]}; likely cause: the backward returns "
                             "a gradient that does not match its input.")


def compare_jacobians(p: Problem, outputs: Sequence[Slot], num: NumericalJacobian,
                      ana: Mapping[tuple[int, int], np.ndarray | None], opts: Options
                      ) -> list[Mismatch]:
    """Every (output, input) block; failing columns are refined once, then re-judged."""
    def failing() -> dict[tuple[int, int], np.ndarray]:
        bad = {}
        for o in outputs:
            for s in p.inputs:
                a = ana[(o.index, s.index)]
                a_vals = np.zeros((o.size, s.size)) if a is None else a
                ex = excess(num.value[(o.index, s.index)], a_vals,
                            num.error[(o.index, s.index)], opts.atol, opts.rtol)
                skip = num.skip.get((o.index, s.index))
                if skip is not None:  # an input at +-inf, f(x) not finite: no evidence
                    ex = np.where(skip, -np.inf, ex)
                if np.any(ex > 0):
                    bad[(o.index, s.index)] = ex
        return bad

    bad = failing()
    if not bad:
        return []
    for s in p.inputs:
        cols = sorted({int(j) for (k, i), ex in bad.items() if i == s.index
                       for j in np.nonzero(np.any(ex > 0, axis=0))[0]} - num.refined[s.index])
        if cols:
            refine_columns(p, outputs, s, cols, num, opts.method)
    bad = failing()
    slots_out = {o.index: o for o in outputs}
    slots_in = {s.index: s for s in p.inputs}
    return [Mismatch(slots_out[k], slots_in[i], num.value[(k, i)], ana[(k, i)],
                     num.error[(k, i)], ex, num.steps[i], opts.atol, opts.rtol,
                     num.status[(k, i)], set(num.refined[i])) for (k, i), ex in bad.items()]


def raise_mismatches(p: Problem, outputs: Sequence[Slot], mismatches: Sequence[Mismatch],
                     opts: Options, what: str) -> None:
    mismatches = sorted(mismatches, key=lambda mm: -float(np.max(mm.excess)))
    causes = [diagnose(p, mm, outputs, opts.method, opts.analytical_name, opts.reference,
                       mismatches) for mm in mismatches]
    raise GradcheckError(failure_message(p, mismatches, causes, what=what,
                                         step_desc=_step_description(opts),
                                         perturbed=_perturbed(p), context=opts.context))


def slow_check(p: Problem, opts: Options, forward: bool = False, prefix: str = "") -> None:
    """Every element of every (output, input) Jacobian block."""
    outputs = p.outputs
    ref = analytical_reference(p, opts.reference)
    if forward:
        ana = ref.jacobian_forward([o.index for o in outputs])
        what = "forward-mode AD (jvp) against finite differences, every element"
    else:
        ks = [o.index for o in outputs]
        ana = ref.jacobian(ks, opts.check_grad_dtypes)
        _grad_problems(ref)
        if p.reference is not None:
            _reentrancy(ana, ref.jacobian(ks), opts.nondet_tol, opts.analytical_name)
        source = "" if ref.name == "callable" else f" ({ref.name})"
        what = f"{opts.analytical_name}{source} against finite differences, every element"
    num = numerical_jacobian(p, outputs, opts.method, opts.rule, opts.checkpoint, opts.progress)
    mismatches = compare_jacobians(p, outputs, num, ana, opts)
    if mismatches:
        raise_mismatches(p, outputs, mismatches, opts, prefix + what)


def zero_check(p: Problem, slots: Sequence[Slot], opts: Options) -> None:
    """Outputs without a derivative (requires_grad False) must not change with the inputs.
    Fast mode: one directional difference first (as torch), every element on failure."""
    if not slots:
        return
    if opts.fast_mode:
        deltas = direction(p, opts)
        d = directional(p, slots, deltas, opts.method)

        def is_zero(d: Directional) -> bool:
            scale = float(sum(np.abs(t).sum() for t in d.tangent.values()))
            zero = np.zeros_like(d.value)
            err = zero if d.error is None else d.error
            return bool(np.all(excess(d.value, zero, err, opts.atol * scale, 0.0) <= 0))

        if is_zero(d):
            return
        refined = refine_direction(p, slots, deltas, opts.method, d)
        if refined is not None and is_zero(refined):
            return
    num = numerical_jacobian(p, slots, opts.method, opts.rule, opts.checkpoint, opts.progress)
    zeros = {key: np.zeros_like(v) for key, v in num.value.items()}
    mismatches = compare_jacobians(p, slots, num, zeros, opts)
    if mismatches:
        mm = mismatches[0]
        m, j = mm.worst()
        raise GradcheckError(
            f"d {mm.out.element(m)} / d {mm.inp.element(j)}: numerical {mm.numerical[m, j]:.8g} "
            f"vs analytical 0 (autodiff declares {mm.out.name} non-differentiable: it does not "
            f"require grad); likely cause: {mm.out.name} depends on {mm.inp.name} through an "
            "operation autodiff does not see (.detach(), .data, a numpy round-trip, no_grad), "
            "so its gradient is silently dropped.\n  perturbation: " + _perturbed(p))


# ---------------------------------------------------------------------------------------
# fast mode: one direction u over all inputs jointly, one v over all outputs
# ---------------------------------------------------------------------------------------
def direction(p: Problem, opts: Options) -> dict[int, np.ndarray]:
    """The perturbation: ONE seeded random u over all checked inputs jointly (no
    per-input normalisation that could cancel), times each element's step."""
    sizes = [s.size for s in p.inputs]
    u = _normals(opts.seed, (sum(sizes),))[0]
    u = u / max(float(np.max(np.abs(u), initial=0.0)), 1e-300)
    deltas, start = {}, 0
    for s, n in zip(p.inputs, sizes):
        x = np.abs(p.host(s.index))
        if opts.eps is not None:
            h = np.full(n, opts.eps)
        elif isinstance(opts.rule, (relative, fixed)):
            h = np.asarray(opts.rule.nominal(x, xp=np, dtype=x.dtype, method=opts.method),
                           dtype=np.float64)
        else:  # adaptive rules: the auto step for the direction
            rule = resolve_rule(p, None, None, opts.method)
            assert isinstance(rule, relative)
            h = rule.nominal(x, xp=np, dtype=x.dtype, method=opts.method)
        # an element at +-inf is not moved (x + h == x there), as in the Jacobian
        deltas[s.index] = np.where(np.isinf(x), 0.0, np.asarray(h) * u[start:start + n])
        start += n
    return deltas


@functools.lru_cache(maxsize=64)
def _normals(seed: int, sizes: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Successive standard normal draws of ``sizes`` from ``default_rng(seed)`` (made once
    per seed and sizes: a generator costs more than a small check's arithmetic)."""
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(n) for n in sizes)


def _cotangents(p: Problem, seed: int) -> dict[int, np.ndarray]:
    draws = _normals(seed + 1, tuple(o.size for o in p.outputs))
    return {o.index: d.copy() for o, d in zip(p.outputs, draws)}


def _projection(d: Directional, vj: dict[int, np.ndarray | None], v: dict[int, np.ndarray],
                outputs: Sequence[Slot]) -> tuple[float, float, float, float]:
    """(numerical v.Ju, analytical (vJ).u, error estimate, sum|u| * sum|v|)."""
    rows = split_rows(outputs, d.value)
    numerical = float(sum(float(v[k] @ rows[k]) for k in v))
    analytical = float(sum(float(g @ d.tangent[i]) for i, g in vj.items() if g is not None))
    err = 0.0
    if d.error is not None:
        err_rows = split_rows(outputs, d.error)
        err = float(sum(float(np.abs(v[k]) @ err_rows[k]) for k in v))
    scale = float(sum(np.abs(t).sum() for t in d.tangent.values()) *
                  sum(np.abs(c).sum() for c in v.values()))
    return numerical, analytical, err, scale


def fast_check(p: Problem, opts: Options) -> str | None:
    """v^T J u from one numerical JVP (two evaluations of f) against one VJP; None if it
    passes, else a line describing the failed projection."""
    ref = analytical_reference(p, opts.reference)
    v = _cotangents(p, opts.seed)
    vj = ref.vjp(v, opts.check_grad_dtypes)
    _grad_problems(ref)
    if p.reference is not None:
        _reentrancy(vj, ref.vjp(v), opts.nondet_tol, opts.analytical_name)
    unmoved = unmoved_projection(p, vj, v, opts.atol, opts.seed)
    if unmoved is not None:
        return unmoved
    deltas = direction(p, opts)
    d = directional(p, p.outputs, deltas, opts.method)
    n, a, err, scale = _projection(d, vj, v, p.outputs)
    if abs(n - a) <= opts.atol * scale + opts.rtol * abs(a):
        return None
    refined = refine_direction(p, p.outputs, deltas, opts.method, d)
    if refined is not None:
        n, a, err, scale = _projection(refined, vj, v, p.outputs)
        tol = err + opts.atol * scale + opts.rtol * abs(a)
        if abs(n - a) <= tol:
            return None
    else:
        tol = math.nan
    return (f"fast mode (seed={opts.seed}): v^T J u numerical {n:.10g} vs analytical "
            f"{a:.10g}, |diff| {abs(n - a):.2g} > {tol:.2g}; every element recomputed below. ")


def fast_forward_check(p: Problem, opts: Options) -> str | None:
    """J u from one numerical JVP against forward-mode AD's J u, element by element."""
    ref = analytical_reference(p, opts.reference)
    deltas = direction(p, opts)
    d = directional(p, p.outputs, deltas, opts.method)
    ks = [o.index for o in p.outputs]

    def judge(d: Directional) -> bool:
        jvp = ref.jvp(d.tangent, ks)
        a = np.concatenate([jvp[k] for k in ks])
        scale = float(sum(np.abs(t).sum() for t in d.tangent.values()))
        err = np.zeros_like(d.value) if d.error is None else d.error
        return bool(np.all(excess(d.value, a, err, opts.atol * scale, opts.rtol) <= 0))

    if judge(d):
        return None
    refined = refine_direction(p, p.outputs, deltas, opts.method, d)
    if refined is not None and judge(refined):
        return None
    return f"fast mode (seed={opts.seed}): forward-mode J u differs from the numerical one. "


# ---------------------------------------------------------------------------------------
# the public function
# ---------------------------------------------------------------------------------------
def run_checks(p: Problem, opts: Options) -> None:
    """Every check the options ask for, in torch's order; raises GradcheckError."""
    ks = [o.index for o in p.outputs]
    if opts.check_backward_ad:
        if not p.outputs:
            zero_check(p, p.nondiff, opts)
        else:
            prefix = fast_check(p, opts) if opts.fast_mode else ""
            if prefix is not None:
                slow_check(p, opts, prefix=prefix)
            if opts.check_nondiff_outputs:
                zero_check(p, p.nondiff, opts)
    if opts.check_forward_ad:
        if p.reference is None:
            raise ValueError("check_forward_ad needs torch or jax inputs (forward-mode AD).")
        if p.outputs:
            prefix = fast_forward_check(p, opts) if opts.fast_mode else ""
            if prefix is not None:
                slow_check(p, opts, forward=True, prefix=prefix)
    ref = p.reference
    if ref is None:
        return
    problems = []
    if opts.check_batched_forward_grad:
        problems.append(ref.batched_forward_problem(ks, opts.seed))
    if opts.check_backward_ad and ks:
        if opts.check_batched_grad:
            problems.append(ref.batched_grad_problem(ks, opts.seed))
        problems.append(ref.backward_ignores_zero_grad_output(ks))
        if opts.check_undefined_grad:
            problems.append(ref.undefined_grad_problem(ks))
    for problem in problems:
        if problem:
            raise GradcheckError(f"{problem}.")


def gradcheck(
    f: Callable[..., Any],
    inputs: Any,
    *,
    eps: float | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_batched_forward_grad: bool = False,
    check_forward_ad: bool = False,
    check_backward_ad: bool = True,
    fast_mode: bool = False,
    masked: bool | None = None,
    reference: object = "auto",
    method: object = "central",
    step: object = None,
    seed: int = 0,
    check_nondiff_outputs: bool = False,
    explain: bool = False,
    checkpoint: object = None,
    progress: object = None,
    _input_names: Sequence[str] | None = None,
    _output_names: Sequence[str] | None = None,
    _context: Sequence[str] = (),
    _analytical_name: str = "the backward",
) -> bool:
    """Check an analytical Jacobian (autodiff or hand-written) against finite differences.

    A drop-in for ``torch.autograd.gradcheck``: every torch keyword is accepted with
    torch's meaning, and the same ``inputs`` contract holds -- floating or complex
    tensors with ``requires_grad=True`` are checked; numbers, strings, enums, dicts
    without float arrays, modules and tensors without ``requires_grad`` reach ``f``
    untouched and are never perturbed. Outputs that do not require grad are left out, as
    torch does. A parameter tree in ``inputs`` (a dict of named tensors, nested
    lists/tuples, namedtuples, jax pytrees) is checked leaf by leaf under the same
    contract, each leaf named by its path (``in[0]['fc.weight'][2, 3]``), and a tree that
    f returns is checked leaf by leaf (``out['loss']``); see :func:`gradcheck_module`.

    The difference is the verdict: an element fails only when
    ``|numerical - analytical| > FD error estimate + atol + rtol * |analytical|``. The
    finite difference's own error is measured where the first comparison fails (the
    column is differenced again at half the step: truncation from the two estimates,
    round-off from |f| and the dtype), so a check near a pole or in a steep region does
    not fail on the numerical side's error, while a 0.1% error in a smooth gradient is
    still caught. The first line of the error names the element, both values and the
    likely cause.

    Parameters
    ----------
    f : callable
        ``f(*inputs)`` returns an array or a tuple of them (non-arrays, integer and
        non-differentiable outputs are left out). Outputs must keep their shape and
        dtype under perturbation.
    inputs : array or tuple
        torch tensors (see above), jax or numpy arrays (every floating one is checked),
        and anything else f takes.
    eps : float, optional
        torch's keyword: the fixed step of the central differences (the perturbation is
        never larger). Default: numdiffx's auto step for the least precise checked dtype,
        ``3**(1/3) * eps(dtype)**(1/3) * max(|x|, 1)`` per element (float64: 8.7e-6).
    atol, rtol : float, optional
        Added to the FD error estimate: ``atol + rtol * |analytical|``. Default
        :func:`default_tolerances` of the least precise checked dtype (float64: 9.4e-9).
    raise_exception : bool
        Raise :class:`GradcheckError` on failure (default) or return False.
    nondet_tol : float
        As torch: the backward is computed twice and may differ by this much.
    check_undefined_grad, check_grad_dtypes, check_batched_grad : bool
        As torch: undefined (None) output gradients must be accepted as zeros; gradient
        dtypes must match the inputs'; vmap over the backward must match single backwards.
    check_batched_forward_grad, check_forward_ad, check_backward_ad : bool
        As torch: forward-mode AD (a custom Function's ``jvp``) is checked against the
        finite differences, and vmap over it; ``check_backward_ad=False`` skips the
        backward checks.
    fast_mode : bool
        Compare ``v^T J u`` for ONE seeded random direction u over all checked inputs
        jointly and one v over all outputs: two evaluations of f and one backward. On
        failure every element is recomputed to build the message (and if every element
        passes, the fast-mode discrepancy was within tolerance: True).
    masked : bool, optional
        Accepted for torch compatibility; sparse inputs are refused, so it has no effect.
    reference : {"auto", "torch", "jax"} or callable
        The analytical side: torch autograd, jax autodiff, or ``reference(*inputs)``
        returning the claimed Jacobian(s), shape ``out.shape + in.shape``.
    method, step : as in :func:`numdiffx.jacobian`
        A first-derivative stencil and a step rule (``step`` excludes ``eps``).
    seed : int
        Seed of the fast-mode directions and of the extra checks' random grad_outputs.
    check_nondiff_outputs : bool
        Also check that outputs autodiff declares non-differentiable do not change.
    explain : bool
        Print :func:`explain_perturbation` for these inputs first.
    checkpoint, progress : optional
        As in :func:`numdiffx.jacobian`, for the numerical Jacobians.

    Returns
    -------
    bool
        True when every check passes (False on failure with ``raise_exception=False``).

    Raises
    ------
    GradcheckError
        A subclass of ``AssertionError``; its first line reads like
        ``d out[0][2] / d in[1][3]: numerical -2.1615526 vs analytical -2.1615524
        (rel 9e-08); likely cause: ...``.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> x = np.array([0.5, 1.0])
    >>> nd.gradcheck(np.sin, (x,), reference=lambda x: np.diag(np.cos(x)))
    True
    >>> nd.gradcheck(np.sin, (x,), reference=lambda x: np.diag(np.sin(x)),
    ...              raise_exception=False)
    False
    """
    _flag(raise_exception, "raise_exception")
    if masked not in (None, True, False):
        raise TypeError(f"masked must be None, True or False; got {masked!r}.")
    flags = {"check_undefined_grad": check_undefined_grad,
             "check_grad_dtypes": check_grad_dtypes, "check_batched_grad": check_batched_grad,
             "check_batched_forward_grad": check_batched_forward_grad,
             "check_forward_ad": check_forward_ad, "check_backward_ad": check_backward_ad,
             "fast_mode": fast_mode, "check_nondiff_outputs": check_nondiff_outputs,
             "explain": explain}
    validate_flags(bool(check_forward_ad), bool(check_backward_ad), bool(check_batched_grad),
                   bool(check_batched_forward_grad))
    flat = flatten_check(f, inputs, _input_names)
    if flat is not None:  # trees in inputs: one input per float leaf, named by path
        if callable(reference):
            raise TypeError("reference=callable takes flat inputs; with trees in inputs use "
                            "reference='auto' (torch/jax autodiff), or pass the leaves as "
                            "separate inputs.")
        f, inputs, _input_names = flat.f, flat.inputs, flat.input_names
        _output_names = _output_names or flat.output_names
    p = build_problem(f, inputs, reference, input_names=_input_names,
                      output_names=_output_names)
    if callable(reference) and _analytical_name == "the backward":
        _analytical_name = "the claimed Jacobian"
    opts = make_options(p, eps=eps, atol=atol, rtol=rtol, nondet_tol=nondet_tol, flags=flags,
                        method=method, step=step, seed=seed, reference=reference,
                        analytical_name=_analytical_name, context=_context)
    opts = replace(opts, checkpoint=checkpoint_iv(checkpoint), progress=progress_iv(progress))
    if explain:
        from ._explain import explain_problem

        print(explain_problem(p, opts.method, opts.rule, _context))
    try:
        run_checks(p, opts)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True
