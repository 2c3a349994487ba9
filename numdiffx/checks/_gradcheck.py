"""gradcheck and gradgradcheck: numdiffx's numerical Jacobian against an analytical one."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from numdiffx._core.api import jacobian, jvp
from numdiffx._core.result import Status
from numdiffx._core.stencils import AbstractMethod, ComplexStep, resolve_method

from . import _frameworks as fw
from ._diagnose import GradcheckError, PairFailure, diagnose, failure_message

__all__ = ["default_tolerances", "gradcheck", "gradgradcheck"]


def default_tolerances(dtype: Any, method: object = "central", deriv: int = 1
                       ) -> tuple[float, float]:
    """(atol, rtol) for comparing a numerical derivative in ``dtype`` with an exact one.

    ``2**8 * eps ** (p / (p + q))`` for a stencil of order p and derivative order q: the
    error of a finite difference at the optimal step is ``~ eps**(p/(p+q))`` times the
    scale of f, and 256 leaves room for functions whose higher derivatives are a few
    orders of magnitude larger than f. float64 central: 9.4e-9; float32 central:
    6.2e-3. Never scaled by the size of the arrays.
    """
    eps = float(np.finfo(np.dtype(str(dtype).replace("torch.", ""))).eps)
    meth = resolve_method(method)
    if isinstance(meth, ComplexStep):
        tol = 2.0**8 * eps ** (2.0 / (2 + deriv)) if deriv > 1 else 2.0**8 * eps
    else:
        tol = 2.0**8 * eps ** (meth.order / (meth.order + deriv))
    return tol, tol


@dataclass
class _Setup:
    """Validated inputs of one check."""

    f: Callable[..., Any]
    framework: str
    inputs: list[Any]  # private copies
    diff: list[int]
    out_shapes: list[tuple[int, ...]]
    out_dtypes: list[Any]
    float_outputs: list[int]
    skipped: list[str]
    f0: list[np.ndarray]  # host copies of the outputs at x
    input_names: list[str]
    output_names: list[str]
    check_dtype: Any
    nondet_tol: float = 0.0
    notes: list[str] = field(default_factory=list)


def _as_inputs(inputs: Any) -> list[Any]:
    if isinstance(inputs, (tuple, list)):
        items = list(inputs)
    else:
        items = [inputs]
    if not items:
        raise ValueError("inputs must hold at least one array; e.g. gradcheck(f, (x,)).")
    return items


def _setup(f: Callable[..., Any], inputs: Any, nondet_tol: float,
           input_names: Sequence[str] | None = None,
           output_names: Sequence[str] | None = None, second_call: bool = True) -> _Setup:
    """Validate; evaluate f at x (twice, for the non-determinism check, if second_call)."""
    if not callable(f):
        raise TypeError(f"f must be callable; got {type(f).__name__}. Pass the function, "
                        "e.g. nd.gradcheck(f, (x,)).")
    if isinstance(nondet_tol, bool) or not isinstance(nondet_tol, (int, float)) or not (
            nondet_tol >= 0):
        raise ValueError(f"nondet_tol must be a number >= 0; got {nondet_tol!r}.")
    items = _as_inputs(inputs)
    frameworks = {fw.framework_of(x) for x in items if fw.is_float(x)}
    if not frameworks:
        raise TypeError("gradcheck needs at least one floating-point array in inputs (numpy, "
                        "torch or jax); got " + ", ".join(type(x).__name__ for x in items) + ".")
    if len(frameworks) > 1:
        raise TypeError(f"all floating inputs must come from one array library; got "
                        f"{sorted(frameworks)}. Convert them first.")
    framework = frameworks.pop()
    for i, x in enumerate(items):
        if fw.is_float(x) and array_namespace(x).isdtype(x.dtype, "real floating") and (
                np.dtype(str(x.dtype).replace("torch.", "")).itemsize < 4):
            raise TypeError(f"inputs[{i}] has dtype {x.dtype}: a 16-bit float cannot be checked "
                            "by finite differences; cast to float32 or float64.")
    if framework == "torch":
        requested = [i for i, x in enumerate(items) if fw.is_float(x) and x.requires_grad]
        diff = requested or [i for i, x in enumerate(items) if fw.is_float(x)]
    else:
        diff = [i for i, x in enumerate(items) if fw.is_float(x)]
    private = [fw.private_copy(x) for x in items]
    snapshot = [fw.as_numpy(x) for x in private]
    call = fw.no_grad_call(f, framework)
    outs, _ = fw.outputs_tuple(call(*private))
    for i, (x, before) in enumerate(zip(private, snapshot)):
        if not np.array_equal(fw.as_numpy(x), before, equal_nan=True):
            raise GradcheckError(
                f"f modified inputs[{i}] in place. A gradient check evaluates f many times at "
                "the same point, so an in-place update makes every later evaluation wrong. "
                "Work on a copy inside f (x = x.clone() / x.copy()). (Your arrays were not "
                "touched: the check passes private copies.)")
    names_in = list(input_names) if input_names else [f"inputs[{i}]" for i in range(len(items))]
    names_out = list(output_names) if output_names else [f"output {k}" for k in range(len(outs))]
    shapes, dtypes, floats, skipped, f0 = [], [], [], [], []
    for k, o in enumerate(outs):
        try:
            xp = array_namespace(o)
        except TypeError:
            raise TypeError(f"f must return arrays (or a tuple of arrays); {names_out[k]} is a "
                            f"{type(o).__name__}.") from None
        shapes.append(tuple(o.shape))
        dtypes.append(o.dtype)
        if not xp.isdtype(o.dtype, ("real floating", "complex floating")):
            skipped.append(f"{names_out[k]} has dtype {o.dtype}: not differentiable, skipped "
                           "(integer and boolean outputs have no Jacobian).")
            f0.append(fw.as_numpy(o))
            continue
        floats.append(k)
        a = fw.as_numpy(o)
        f0.append(a)
    if not floats:
        raise ValueError("f has no floating-point output to check: " + " ".join(skipped))
    float_dtypes = [dtypes[k] for k in floats] + [items[i].dtype for i in diff]
    check_dtype = min((np.dtype(str(d).replace("torch.", "")) for d in float_dtypes),
                      key=lambda d: np.finfo(d).bits)
    setup = _Setup(f, framework, private, diff, shapes, dtypes, floats, skipped, f0, names_in,
                   names_out, check_dtype, float(nondet_tol))
    if second_call:
        check_nondeterminism(setup, fw.outputs_tuple(call(*private))[0])
    return setup


def check_nondeterminism(s: _Setup, outs2: Sequence[Any]) -> None:
    """Compare a second evaluation of f at x (any autodiff mode) with the first."""
    for k in s.float_outputs:
        a, b = s.f0[k], fw.as_numpy(outs2[k])
        diff_ab = np.abs(a - b)
        worst = float(np.nanmax(diff_ab)) if diff_ab.size and not np.all(
            np.isnan(diff_ab)) else 0.0
        if worst > s.nondet_tol or not np.array_equal(np.isnan(a), np.isnan(b)):
            where = np.unravel_index(int(np.nanargmax(diff_ab)), a.shape) if a.size else ()
            raise GradcheckError(
                f"Gradcheck failed: f is non-deterministic. Two calls at the same inputs gave "
                f"{s.output_names[k]} values differing by {worst:.3g} (element "
                f"{tuple(map(int, where))}: {float(a[where])!r} vs {float(b[where])!r}) > "
                f"nondet_tol={s.nondet_tol}.\n"
                "  likely cause: non-determinism (random numbers without a fixed seed, dropout "
                "in training mode, atomic adds on GPU, state updated between calls). Finite "
                "differences subtract nearby values of f, so any noise above the step's effect "
                "becomes a wrong derivative. Fix the randomness, or pass nondet_tol larger than "
                "the noise.")


class _Restricted:
    """f as a function of the differentiated inputs only, returning one flat vector.

    Every call is checked against f(x): same outputs, shapes and dtypes; a change under
    perturbation raises GradcheckError naming the input perturbed.
    """

    def __init__(self, s: _Setup, variables: Sequence[int]) -> None:
        self.s = s
        self.variables = list(variables)
        self.call = fw.no_grad_call(s.f, s.framework)
        self.log: list[list[Any]] | None = None

    def __call__(self, *values: Any) -> Any:
        s = self.s
        args = list(s.inputs)
        for i, v in zip(self.variables, values):
            args[i] = v
        if self.log is not None:
            self.log.append(list(values))
        outs, _ = fw.outputs_tuple(self.call(*args))
        names = ", ".join(s.input_names[i] for i in self.variables)
        if len(outs) != len(s.out_shapes):
            raise GradcheckError(f"f returned {len(outs)} outputs when {names} was perturbed "
                                 f"but {len(s.out_shapes)} at x; f's output structure must not "
                                 "depend on the input values.")
        pieces = []
        for k, o in enumerate(outs):
            if tuple(o.shape) != s.out_shapes[k] or str(o.dtype) != str(s.out_dtypes[k]):
                raise GradcheckError(
                    f"{s.output_names[k]} changed from shape {s.out_shapes[k]} dtype "
                    f"{s.out_dtypes[k]} at x to shape {tuple(o.shape)} dtype {o.dtype} when "
                    f"{names} was perturbed: f is not differentiable there (its output "
                    "structure depends on the input values), so no Jacobian exists.")
            if k in s.float_outputs:
                xp = array_namespace(o)
                pieces.append(xp.reshape(o, (-1,)))
        xp = array_namespace(pieces[0])
        common = pieces[0].dtype
        for p in pieces[1:]:
            common = xp.result_type(common, p.dtype)
        flat = xp.concat([xp.astype(p, common) for p in pieces], axis=0)
        return flat.detach() if s.framework == "torch" else flat


def _split_rows(s: _Setup, flat_rows: np.ndarray) -> dict[int, np.ndarray]:
    """Rows of the concatenated output -> {k: rows of output k}."""
    out, start = {}, 0
    for k in s.float_outputs:
        size = math.prod(s.out_shapes[k])
        out[k] = flat_rows[start:start + size]
        start += size
    return out


@dataclass
class _Numerical:
    J: dict[tuple[int, int], np.ndarray]
    status: dict[tuple[int, int], np.ndarray]
    steps: dict[int, np.ndarray]


def _numerical(s: _Setup, method: AbstractMethod, step: object) -> _Numerical:
    J, status, steps = {}, {}, {}
    for i in s.diff:
        g = _Restricted(s, [i])
        res = jacobian(g, s.inputs[i], method=method, step=step, evaluation="loop",
                       full_output=True)
        n_i = math.prod(tuple(s.inputs[i].shape))
        value = fw.as_numpy(res.value).reshape(-1, n_i).astype(np.float64)
        stat = fw.as_numpy(res.status).reshape(-1, n_i)
        for k, rows in _split_rows(s, value).items():
            J[(k, i)] = rows
        for k, rows in _split_rows(s, stat).items():
            status[(k, i)] = rows
        steps[i] = fw.as_numpy(res.step).reshape(-1).astype(np.float64)
    return _Numerical(J, status, steps)


def _analytical(s: _Setup, reference: object) -> dict[tuple[int, int], np.ndarray | None]:
    kind = _reference_kind(s, reference)
    if kind == "torch":
        jac, outs = fw.torch_jacobians(s.f, s.inputs, s.diff, s.float_outputs)
        check_nondeterminism(s, outs)
        return jac
    if kind == "jax":
        return fw.jax_jacobians(s.f, s.inputs, s.diff, s.float_outputs)
    assert callable(reference)
    return fw.callable_jacobians(reference, s.inputs, s.diff, s.float_outputs, s.out_shapes)


def _reference_kind(s: _Setup, reference: object) -> str:
    if callable(reference):
        return "callable"
    if reference not in ("auto", "torch", "jax"):
        raise ValueError(f"reference={reference!r} is not known; use 'auto', 'torch', 'jax' or a "
                         "callable returning the claimed Jacobian(s).")
    kind = s.framework if reference == "auto" else str(reference)
    if kind not in ("torch", "jax"):
        raise ValueError(f"reference='auto' needs torch or jax inputs to differentiate "
                         f"analytically; got {s.framework} arrays. Pass reference=callable "
                         "returning the claimed Jacobian (shape out.shape + in.shape).")
    if kind != s.framework:
        raise ValueError(f"reference={reference!r} cannot differentiate {s.framework} arrays; "
                         f"use reference='auto' or convert the inputs to {kind}.")
    return kind


def _compare(s: _Setup, num: _Numerical, ana: dict[tuple[int, int], np.ndarray | None],
             atol: float, rtol: float) -> list[PairFailure]:
    failures = []
    for k in s.float_outputs:
        for i in s.diff:
            n_j = num.J[(k, i)]
            a_j = ana[(k, i)]
            a_vals = np.zeros_like(n_j) if a_j is None else a_j
            bad_step = num.status[(k, i)] != int(Status.SUCCESS)
            excess = np.abs(n_j - a_vals) - (atol + rtol * np.abs(a_vals))
            excess = np.where(np.isnan(excess), np.inf, excess)
            if np.any(excess > 0) or np.any(bad_step):
                failures.append(PairFailure(k, i, n_j, a_j, num.status[(k, i)], num.steps[i],
                                            excess))
    return failures


def _resolve_tolerances(s: _Setup, method: AbstractMethod, atol: float | None,
                        rtol: float | None, deriv: int = 1) -> tuple[float, float]:
    d_atol, d_rtol = default_tolerances(s.check_dtype, method, deriv)
    for name, value in (("atol", atol), ("rtol", rtol)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not value >= 0):
            raise ValueError(f"{name} must be None (per-dtype default) or a number >= 0; got "
                             f"{value!r}.")
    return (d_atol if atol is None else float(atol)), (d_rtol if rtol is None else float(rtol))


def _random_vectors(s: _Setup, seed: int) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Seeded unit-norm u per differentiated input and v per float output."""
    rng = np.random.default_rng(seed)

    def unit(n: int) -> np.ndarray:
        a = rng.standard_normal(n)
        norm = float(np.linalg.norm(a))
        return a / norm if norm > 0 else a

    u = {i: unit(math.prod(tuple(s.inputs[i].shape))) for i in s.diff}
    v = {k: unit(math.prod(s.out_shapes[k])) for k in s.float_outputs}
    return u, v


def _fast_passes(s: _Setup, reference: object, method: AbstractMethod, step: object,
                 atol: float, rtol: float, seed: int) -> tuple[bool, str]:
    """One numerical JVP along u vs one analytical VJP along v: compare v^T J u."""
    u, v = _random_vectors(s, seed)
    kind = _reference_kind(s, reference)
    primals = tuple(s.inputs[i] for i in s.diff)
    xp = array_namespace(primals[0])
    tangents = tuple(xp.asarray(np.asarray(u[i], dtype=np.dtype(str(x.dtype).replace(
        "torch.", ""))).reshape(tuple(x.shape)), device=_device(x))
        for i, x in zip(s.diff, primals))
    if kind == "torch":
        vj, outs = fw.torch_vjp(s.f, s.inputs, s.diff, s.float_outputs, v)
        check_nondeterminism(s, outs)
    elif kind == "jax":
        vj = fw.jax_vjp(s.f, s.inputs, s.diff, s.float_outputs, v)
    else:
        jac = _analytical(s, reference)
        vj = {}
        for i in s.diff:
            total = np.zeros(u[i].size)
            for k in s.float_outputs:
                j_ki = jac[(k, i)]
                if j_ki is not None:
                    total = total + v[k] @ j_ki
            vj[i] = total
    g = _Restricted(s, s.diff)
    _, ju = jvp(g, primals, tangents, method=method, step=step, evaluation="loop")
    ju_rows = _split_rows(s, fw.as_numpy(ju).astype(np.float64))
    numerical = float(sum(float(v[k] @ ju_rows[k]) for k in s.float_outputs))
    analytical = float(sum(float(vj[i] @ u[i]) for i in s.diff))
    scale = float(sum(np.abs(u[i]).sum() for i in s.diff) *
                  sum(np.abs(v[k]).sum() for k in s.float_outputs))
    tol = atol * scale + rtol * abs(analytical)
    ok = math.isfinite(numerical) and abs(numerical - analytical) <= tol
    return ok, (f"fast mode (seed={seed}): v^T J u numerical {numerical:.10g} vs analytical "
                f"{analytical:.10g}, |diff| {abs(numerical - analytical):.3g} > tolerance "
                f"{tol:.3g} (atol*|u|_1*|v|_1 + rtol*|analytical|)")


def _device(x: Any) -> Any:
    from array_api_compat import device

    return device(x)


def gradcheck(
    f: Callable[..., Any],
    inputs: Any,
    *,
    reference: object = "auto",
    fast_mode: bool = False,
    method: object = "central",
    step: object = None,
    atol: float | None = None,
    rtol: float | None = None,
    nondet_tol: float = 0.0,
    seed: int = 0,
    raise_exception: bool = True,
    explain: bool = False,
    _input_names: Sequence[str] | None = None,
    _output_names: Sequence[str] | None = None,
) -> bool:
    """Check an analytical Jacobian (autodiff or hand-written) against finite differences.

    The numerical side is :func:`numdiffx.jacobian`: each element ``j`` of each
    differentiated input is perturbed separately by the stencil offsets times its own
    step ``h_j`` (by default numdiffx's dtype-aware auto step, not a fixed ``1e-6``), all
    other inputs fixed; ``J[m, j] = sum_k w_k f_m(x + o_k h_j e_j) / h_j``. f is called on
    detached private copies under ``torch.no_grad()`` -- your arrays are never touched.

    Parameters
    ----------
    f : callable
        ``f(*inputs)`` returns an array or a tuple of arrays. Integer/bool outputs are
        skipped (not differentiable); outputs must keep shape and dtype under
        perturbation.
    inputs : array or tuple of arrays
        numpy, torch or jax arrays. With torch, inputs with ``requires_grad=True`` are
        differentiated (all floating ones if none requires grad); otherwise all
        floating inputs.
    reference : {"auto", "torch", "jax"} or callable
        Where the analytical Jacobian comes from: torch autograd (one
        ``torch.autograd.grad`` per output element, custom ``autograd.Function``\\ s
        included), ``jax.jacrev``/``jax.vjp``, or ``reference(*inputs)`` returning the
        claimed Jacobian(s) of shape ``out.shape + in.shape`` (a tuple over outputs of
        tuples over inputs when there are several).
    fast_mode : bool
        Compare only ``v^T J u`` for seeded random unit vectors u (per input), v (per
        output): ONE numerical JVP against ONE analytical VJP. Tolerance
        ``atol*|u|_1*|v|_1 + rtol*|v^T J u|`` (the elementwise bound summed). On failure
        the slow check runs to build the message; if the slow check passes, the
        fast-mode discrepancy was within the elementwise tolerances and True is returned.
    method, step : as in :func:`numdiffx.jacobian`
    atol, rtol : float, optional
        An element passes when ``|numerical - analytical| <= atol + rtol*|analytical|``.
        Default :func:`default_tolerances` of the lowest-precision float dtype among the
        differentiated inputs and outputs (float64 central: 9.4e-9, float32: 6.2e-3).
    nondet_tol : float
        f is evaluated twice at the inputs; outputs differing by more fail.
    seed : int
        Seed of u and v (fast mode); the same seed reproduces the same check.
    raise_exception : bool
        Raise :class:`GradcheckError` on failure (default) or return False.
    explain : bool
        Print :func:`explain_perturbation` for these inputs first.

    Returns
    -------
    bool
        True when every checked Jacobian matches.

    Raises
    ------
    GradcheckError
        (a subclass of ``AssertionError``: a failed check, as a failed ``assert``) naming
        the output and input, the worst elements (numerical vs analytical), the step and
        the likely cause.

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
    s = _setup(f, inputs, nondet_tol, _input_names, _output_names, second_call=False)
    meth = resolve_method(method)
    atol_, rtol_ = _resolve_tolerances(s, meth, atol, rtol)
    if _reference_kind(s, reference) != "torch":  # torch: autograd's forward is the 2nd call
        check_nondeterminism(s, fw.outputs_tuple(fw.no_grad_call(f, s.framework)(*s.inputs))[0])
    if explain:
        from ._diagnose import explain_perturbation

        print(explain_perturbation(f, inputs, method=method, step=step,
                                   input_names=_input_names, output_names=_output_names))
    prefix = ""
    if fast_mode:
        ok, prefix = _fast_passes(s, reference, meth, step, atol_, rtol_, seed)
        if ok:
            return True
    ana = _analytical(s, reference)
    num = _numerical(s, meth, step)
    failures = _compare(s, num, ana, atol_, rtol_)
    if not failures:
        return True
    if not raise_exception:
        return False
    causes = [diagnose(s, fail, meth, atol_, rtol_) for fail in failures]
    raise GradcheckError(failure_message(s, failures, causes, meth, atol_, rtol_, prefix))


def gradgradcheck(
    f: Callable[..., Any],
    inputs: Any,
    grad_outputs: Any = None,
    *,
    fast_mode: bool = False,
    method: object = "central",
    step: object = None,
    atol: float | None = None,
    rtol: float | None = None,
    nondet_tol: float = 0.0,
    seed: int = 0,
    check_hvp: bool = True,
    raise_exception: bool = True,
    explain: bool = False,
) -> bool:
    """Check second derivatives: the backward of the backward, and Hessian-vector products.

    The function ``G(inputs..., grad_outputs...) = vjp of f at inputs along grad_outputs``
    (torch: ``torch.autograd.grad(f(x), x, grad_outputs, create_graph=True)``; jax:
    ``jax.vjp``) is checked with :func:`gradcheck`: its analytical Jacobian is the double
    backward, its numerical one perturbs every element of the inputs AND of the
    grad_outputs (they are inputs of G) one at a time and re-runs the first backward.
    ``grad_outputs`` default to seeded random normal arrays (``seed``), so a failure
    reproduces. For a scalar-valued f, ``check_hvp`` also compares ``nd.hvp`` (second
    differences of f itself) with autodiff's Hessian-vector product along a seeded v.

    Parameters are those of :func:`gradcheck`; tolerances default to the first-derivative
    ones for G and the second-derivative ones for the HVP (float64: 3.8e-6).

    Examples
    --------
    >>> import torch, numdiffx as nd
    >>> x = torch.tensor([0.5, 1.5], dtype=torch.float64, requires_grad=True)
    >>> nd.gradgradcheck(lambda x: (x.sin() * x).sum(), (x,))
    True
    """
    items = _as_inputs(inputs)
    s = _setup(f, items, nondet_tol)
    if s.framework not in ("torch", "jax"):
        raise ValueError(f"gradgradcheck needs torch or jax inputs (it differentiates the "
                         f"backward); got {s.framework} arrays.")
    float_outs = s.float_outputs
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        gos_np = [rng.standard_normal(s.out_shapes[k]) for k in float_outs]
        gos = [_like(g, s.f0[k], s.out_dtypes[k], items, s.framework)
               for g, k in zip(gos_np, float_outs)]
    else:
        gos = _as_inputs(grad_outputs)
        if len(gos) != len(float_outs):
            raise ValueError(f"grad_outputs must hold one array per floating output of f "
                             f"({len(float_outs)}); got {len(gos)}.")
    n_in = len(items)
    diff = list(s.diff)
    G = _vjp_function(f, n_in, diff, float_outs, s.framework)
    if s.framework == "torch":
        g_inputs = [x.detach().clone().requires_grad_(i in diff) for i, x in enumerate(items)]
        g_inputs += [g.detach().clone().requires_grad_(True) for g in gos]
    else:
        g_inputs = list(items) + list(gos)
    names_in = [f"inputs[{i}]" for i in range(n_in)] + [
        f"grad_outputs[{j}] (cotangent of output {k})" for j, k in enumerate(float_outs)]
    names_out = [f"grad of inputs[{i}] (first backward)" for i in diff]
    if explain:
        print("gradgradcheck checks G(inputs, grad_outputs) = vjp of f at inputs along "
              "grad_outputs (the first backward) with gradcheck. The grad_outputs are INPUTS of "
              "G: each of their elements is perturbed by its own step, exactly like the elements "
              "of the inputs, and G (a full first backward) is re-run for every perturbation. "
              "grad_outputs here: " + (f"seeded random normal (seed={seed})."
                                       if grad_outputs is None else "given."))
    scalar = len(float_outs) == 1 and s.out_shapes[float_outs[0]] == ()
    if check_hvp and scalar and not _hvp_check(s, method, step, atol, rtol, seed,
                                               raise_exception):
        return False
    return gradcheck(G, tuple(g_inputs), fast_mode=fast_mode, method=method, step=step,
                     atol=atol, rtol=rtol, nondet_tol=nondet_tol, seed=seed,
                     raise_exception=raise_exception, explain=explain,
                     _input_names=names_in, _output_names=names_out)


def _like(a: np.ndarray, f0: np.ndarray, dtype: Any, items: Sequence[Any], framework: str
          ) -> Any:
    if framework == "torch":
        import torch

        ref = next(x for x in items if fw.is_float(x))
        return torch.as_tensor(a, dtype=dtype, device=ref.device)
    import jax.numpy as jnp

    return jnp.asarray(a, dtype=dtype)


def _vjp_function(f: Callable[..., Any], n_in: int, diff: Sequence[int],
                  float_outs: Sequence[int], framework: str) -> Callable[..., Any]:
    """G(*inputs, *grad_outputs) -> tuple of vjp's w.r.t. the differentiated inputs."""
    if framework == "torch":
        import torch

        def g_torch(*args: Any) -> tuple[Any, ...]:
            xs, gos = list(args[:n_in]), list(args[n_in:])
            with torch.enable_grad():
                for i in diff:
                    if not xs[i].requires_grad:  # numerical side: a plain tensor
                        xs[i] = xs[i].detach().requires_grad_(True)
                outs, _ = fw.outputs_tuple(f(*xs))
                used = [(outs[k], go) for k, go in zip(float_outs, gos) if outs[k].requires_grad]
                if not used:
                    return tuple(torch.zeros_like(xs[i]) for i in diff)
                grads = torch.autograd.grad([o for o, _ in used], [xs[i] for i in diff],
                                            grad_outputs=[go for _, go in used],
                                            create_graph=True, allow_unused=True)
            return tuple(torch.zeros_like(xs[i]) if g is None else g
                         for i, g in zip(diff, grads))

        return g_torch
    import jax

    def g_jax(*args: Any) -> tuple[Any, ...]:
        xs, gos = list(args[:n_in]), list(args[n_in:])

        def fd(*d: Any) -> tuple[Any, ...]:
            a = list(xs)
            for i, v in zip(diff, d):
                a[i] = v
            outs, _ = fw.outputs_tuple(f(*a))
            return tuple(outs[k] for k in float_outs)

        _, pullback = jax.vjp(fd, *[xs[i] for i in diff])
        return tuple(pullback(tuple(gos)))

    return g_jax


def _hvp_check(s: _Setup, method: object, step: object, atol: float | None,
               rtol: float | None, seed: int, raise_exception: bool) -> bool:
    """nd.hvp (second differences of f) against autodiff's double backward."""
    from numdiffx._core.api import hvp

    meth = resolve_method(method)
    atol_, rtol_ = _resolve_tolerances(s, meth, atol, rtol, deriv=2)
    rng = np.random.default_rng(seed + 1)
    k = s.float_outputs[0]
    primals = [s.inputs[i] for i in s.diff]
    vs_np = [rng.standard_normal(tuple(p.shape)) for p in primals]
    vs = [_like(v, v, p.dtype, primals, s.framework) for v, p in zip(vs_np, primals)]

    def scalar_f(*d: Any) -> Any:
        a = list(s.inputs)
        for i, x in zip(s.diff, d):
            a[i] = x
        outs, _ = fw.outputs_tuple(s.f(*a))
        return outs[k]

    numerical = hvp(fw.no_grad_call(scalar_f, s.framework), tuple(primals), tuple(vs),
                    method=meth, step=step, evaluation="loop")
    if s.framework == "torch":
        import torch

        xs = [p.detach().clone().requires_grad_(True) for p in primals]
        with torch.enable_grad():
            y = scalar_f(*xs)
            gs = torch.autograd.grad(y, xs, create_graph=True, allow_unused=True)
            dot = sum((g * v).sum() for g, v in zip(gs, vs) if g is not None)
            if isinstance(dot, int) or not dot.requires_grad:
                analytical: list[Any] = [None] * len(xs)
            else:
                analytical = list(torch.autograd.grad(dot, xs, allow_unused=True))
    else:
        import jax

        _, tangent = jax.jvp(jax.grad(scalar_f, argnums=tuple(range(len(primals)))),
                             tuple(primals), tuple(vs))
        analytical = list(tangent)
    for pos, i in enumerate(s.diff):
        n = fw.as_numpy(numerical[pos]).reshape(-1).astype(np.float64)
        a_raw = analytical[pos]
        a = np.zeros_like(n) if a_raw is None else fw.as_numpy(a_raw).reshape(-1).astype(
            np.float64)
        excess = np.abs(n - a) - (atol_ + rtol_ * np.abs(a))
        excess = np.where(np.isnan(excess), np.inf, excess)
        if np.any(excess > 0):
            if not raise_exception:
                return False
            j = int(np.argmax(excess))
            cause = ("the analytical Hessian-vector product is None: the gradient of f is not "
                     "differentiable (a backward built without create_graph support, e.g. "
                     "@once_differentiable or non-autograd ops inside backward)"
                     if a_raw is None else
                     "the double backward (derivative of the backward) is wrong, or f is not "
                     "twice differentiable here")
            raise GradcheckError(
                f"Gradcheck failed: Hessian-vector product w.r.t. inputs[{i}] (seed={seed}): "
                f"worst element {j}: numerical {n[j]:.10g} vs analytical {a[j]:.10g}, |diff| "
                f"{abs(n[j] - a[j]):.3g} > atol {atol_:.3g} + rtol {rtol_:.3g}*|analytical|.\n"
                f"  numerical: nd.hvp, mixed second differences of f along e_j and v.\n"
                f"  likely cause: {cause}.")
    return True
