"""gradgradcheck: the double backward against finite differences of the first backward,
and Hessian-vector products against second differences of f itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from numdiffx._core.api_second import hvp
from numdiffx.backends.autodiff import to_host
from numdiffx.steps import auto, fixed

from ._compare import default_tolerances, excess, tolerance_terms
from ._gradcheck import _flag, _number, gradcheck
from ._numerical import finite_difference_error
from ._problem import GradcheckError, Problem, Slot, build_problem, real_view
from ._trees import flatten_check

__all__ = ["gradgradcheck"]


def _grad_outputs(p: Problem, grad_outputs: Any, seed: int, non_contiguous: bool
                  ) -> list[Any]:
    """The cotangents: the caller's (one per differentiable output), or seeded random."""
    if grad_outputs is not None:
        gos = list(grad_outputs) if isinstance(grad_outputs, (tuple, list)) else [grad_outputs]
        if len(gos) != len(p.outputs):
            raise ValueError(f"grad_outputs must hold one array per differentiable output of f "
                             f"({len(p.outputs)}: {[o.name for o in p.outputs]}); got "
                             f"{len(gos)}.")
        return gos
    rng = np.random.default_rng(seed)
    gos = []
    for o in p.outputs:
        out = p.reference.outputs[o.index]
        values = rng.uniform(-1.0, 1.0, o.shape)
        if o.is_complex:
            values = values + 1j * rng.uniform(-1.0, 1.0, o.shape)
        gos.append(_like(values, out, non_contiguous))
    return gos


def _like(values: np.ndarray, out: Any, non_contiguous: bool) -> Any:
    if p_is_torch(out):
        import torch

        t = torch.as_tensor(values, dtype=out.dtype, device=out.device)
        if non_contiguous and t.numel() > 1:
            wide = torch.empty((*t.shape, 2), dtype=t.dtype, device=t.device)
            wide[..., 0] = t
            t = wide[..., 0]
        return t.requires_grad_(True)
    import jax.numpy as jnp
    from array_api_compat import device

    return jnp.asarray(values, dtype=out.dtype, device=device(out))  # on out's device


def p_is_torch(x: Any) -> bool:
    return type(x).__module__.split(".", 1)[0] == "torch"


def first_backward(f: Callable[..., Any], inputs: Any, grad_outputs: Any = None, seed: int = 0,
                   non_contiguous: bool = False) -> tuple[Problem, Callable[..., Any],
                                                         list[Any], list[str], list[str],
                                                         list[str]]:
    """(problem of f, G, G's inputs, their names, G's output names, message context):
    G(inputs, grad_outputs) is f's first backward, differentiable again. Trees in inputs
    are flattened first (one input per float leaf, named by path)."""
    flat = flatten_check(f, inputs)
    if flat is None:
        p = build_problem(f, inputs, "auto")
    else:
        p = build_problem(flat.f, flat.inputs, "auto", input_names=flat.input_names,
                          output_names=flat.output_names)
    if p.reference is None:  # pragma: no cover - build_problem refuses non-autodiff inputs
        raise ValueError("gradgradcheck needs torch or jax inputs.")
    if not p.outputs:
        raise ValueError("f has no differentiable output: there is no first backward to "
                         "check. " + " ".join(p.skipped))
    gos = _grad_outputs(p, grad_outputs, seed, non_contiguous)
    G = p.reference.first_backward(len(p.args), [s.index for s in p.inputs],
                                   [o.index for o in p.outputs])
    g_inputs = list(p.args)
    if p.framework == "torch":
        for s in p.inputs:
            g_inputs[s.index] = p.args[s.index].detach().requires_grad_(True)
    g_inputs += gos
    names_in = [s.name for s in _all_slots(p, len(p.args))] + [
        f"grad_outputs[{j}]" for j in range(len(gos))]
    names_out = [f"grad {s.name}" for s in p.inputs]
    source = ("seeded uniform(-1, 1), seed=" + str(seed)) if grad_outputs is None else (
        "the grad_outputs given")
    context = [
        "gradgradcheck: the checked function is the first backward G(inputs, grad_outputs) = "
        "vjp of f at inputs along grad_outputs; its analytical Jacobian is f's DOUBLE "
        "BACKWARD (the backward of the backward).",
        f"perturbed: the inputs AND the grad_outputs ({source}), one element at a time -- "
        "both are inputs of G, and G (a whole first backward) is re-run for each "
        "perturbation. The outputs and gradients are never perturbed.",
    ]
    return p, G, g_inputs, names_in, names_out, context


def gradgradcheck(
    f: Callable[..., Any],
    inputs: Any,
    grad_outputs: Any = None,
    *,
    eps: float | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    gen_non_contig_grad_outputs: bool = False,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_fwd_over_rev: bool = False,
    check_rev_over_rev: bool = True,
    fast_mode: bool = False,
    masked: bool = False,
    method: object = "central",
    step: object = None,
    seed: int = 0,
    check_hvp: bool = True,
    explain: bool = False,
    checkpoint: object = None,
    progress: object = None,
) -> bool:
    """Check second derivatives: the double backward, and Hessian-vector products.

    A drop-in for ``torch.autograd.gradgradcheck`` (every torch keyword, torch's
    meaning; jax functions too). The function checked is the first backward

        ``G(inputs, grad_outputs) = vjp of f at inputs along grad_outputs``

    (torch: ``torch.autograd.grad(f(x), x, grad_outputs, create_graph=True)``; jax:
    ``jax.vjp``). Its numerical Jacobian perturbs every element of the inputs AND of the
    grad_outputs -- both are inputs of G -- one at a time, and re-runs the whole first
    backward for each; its analytical Jacobian is f's double backward. ``grad_outputs``
    default to seeded uniform(-1, 1) arrays (complex for complex outputs), so a failure
    reproduces with the same ``seed``. With a real scalar output and ``check_hvp``,
    Hessian-vector products from second differences of f itself are compared with
    autodiff's along a seeded direction, with the same FD error estimate.

    Parameters are those of :func:`gradcheck`, plus ``grad_outputs`` (one per
    differentiable output), ``gen_non_contig_grad_outputs`` (make the generated ones
    non-contiguous), ``check_fwd_over_rev`` (forward-mode AD of the first backward) and
    ``check_rev_over_rev`` (its backward, default), as in torch.

    Examples
    --------
    >>> import torch, numdiffx as nd
    >>> x = torch.tensor([0.5, 1.5], dtype=torch.float64, requires_grad=True)
    >>> nd.gradgradcheck(lambda x: (x.sin() * x).sum(), (x,))
    True
    """
    _flag(raise_exception, "raise_exception")
    for name, value in (("check_fwd_over_rev", check_fwd_over_rev),
                        ("check_rev_over_rev", check_rev_over_rev),
                        ("check_undefined_grad", check_undefined_grad),
                        ("check_batched_grad", check_batched_grad), ("check_hvp", check_hvp),
                        ("gen_non_contig_grad_outputs", gen_non_contig_grad_outputs)):
        _flag(value, name)
    if not (check_fwd_over_rev or check_rev_over_rev):
        raise ValueError("at least one of check_fwd_over_rev and check_rev_over_rev must be "
                         "True.")
    if check_undefined_grad and not check_rev_over_rev:
        raise ValueError("check_undefined_grad=True needs check_rev_over_rev=True (as torch); "
                         "pass check_undefined_grad=False.")
    if check_batched_grad and not check_rev_over_rev:
        raise ValueError("check_batched_grad=True needs check_rev_over_rev=True.")
    p, G, g_inputs, names_in, names_out, context = first_backward(
        f, inputs, grad_outputs, seed, gen_non_contig_grad_outputs)
    ok = gradcheck(G, tuple(g_inputs), eps=eps, atol=atol, rtol=rtol,
                   raise_exception=raise_exception, nondet_tol=nondet_tol,
                   check_undefined_grad=check_undefined_grad,
                   check_grad_dtypes=check_grad_dtypes, check_batched_grad=check_batched_grad,
                   check_forward_ad=check_fwd_over_rev, check_backward_ad=check_rev_over_rev,
                   fast_mode=fast_mode, masked=masked, method=method, step=step, seed=seed,
                   explain=explain, checkpoint=checkpoint, progress=progress,
                   _input_names=names_in, _output_names=names_out,
                   _context=context, _analytical_name="the double backward")
    if not ok or not check_hvp:
        return ok
    scalar = len(p.outputs) == 1 and p.outputs[0].size == 1 and not p.outputs[0].is_complex
    if scalar and len({str(s.dtype) for s in p.inputs}) == 1 and all(
            not s.is_complex for s in p.inputs):
        try:
            _hvp_check(p, p.outputs[0], eps, atol, rtol, seed)
        except GradcheckError:
            if raise_exception:
                raise
            return False
    return True


def _all_slots(p: Problem, n: int) -> list[Slot]:
    by_index = {s.index: s for s in p.inputs}
    return [by_index.get(i, Slot(i, f"in[{i}]", (), None, False, 0.0)) for i in range(n)]


def _hvp_check(p: Problem, out: Slot, eps: float | None, atol: float | None,
               rtol: float | None, seed: int) -> None:
    """nd.hvp (mixed second differences of f) against autodiff's double backward."""
    rng = np.random.default_rng(seed + 2)
    vs = {s.index: rng.standard_normal(s.size) for s in p.inputs}
    analytical = p.reference.hvp(out.index, vs)
    primals = tuple(real_view(p.args[s.index]) for s in p.inputs)
    tangents = tuple(_device(vs[s.index], x) for s, x in zip(p.inputs, primals))
    k = out.index

    def scalar_f(*reals: Any) -> Any:
        args = list(p.args)
        from ._problem import from_real_view

        for s, r in zip(p.inputs, reals):
            args[s.index] = from_real_view(r, s)
        outs = p.f(*args)
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        return outs[k].reshape(())

    d_atol, d_rtol = default_tolerances("float32" if p.check_eps > 1e-10 else "float64",
                                        deriv=2)
    atol_ = d_atol if atol is None else float(_number(atol, "atol", False) or 0.0)
    rtol_ = d_rtol if rtol is None else float(_number(rtol, "rtol", False) or 0.0)
    from numdiffx.backends import backend_for

    no_grad = backend_for(primals[0]).no_grad

    def numerical(factor: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
        rule = fixed(eps * factor) if eps is not None else auto(factor=factor)
        with no_grad():
            res = hvp(scalar_f, primals, tangents, step=rule, evaluation="loop",
                      full_output=True)
        res = res if isinstance(res, tuple) else (res,)
        return ([to_host(r.value).reshape(-1).astype(np.float64) for r in res],
                [np.broadcast_to(to_host(r.step).astype(np.float64).reshape(-1),
                                 (s.size,)) for r, s in zip(res, p.inputs)])

    factor = 1.0
    first, steps = numerical(factor)
    if not all(np.all(np.isfinite(v)) for v in first):  # a domain edge within the step
        factor = 1.0 / 16
        first, steps = numerical(factor)
    second: tuple[list[np.ndarray], list[np.ndarray]] | None = None
    f_abs = abs(float(p.f0[k][0]))
    v_max = max(float(np.max(np.abs(v), initial=0.0)) for v in vs.values()) or 1.0
    for pos, s in enumerate(p.inputs):
        a_raw = analytical[s.index]
        a = np.zeros(s.size) if a_raw is None else a_raw
        err = np.zeros(s.size)
        n_vals = first[pos]
        ex = excess(n_vals, a, err, atol_, rtol_)
        if np.any(ex > 0):
            second = second or numerical(factor / 2)
            n_vals, h = second[0][pos], second[1][pos]
            t = max(float(np.max(hh, initial=0.0)) for hh in second[1]) / v_max
            # mixed second difference: four values of f, weights +-1/(4 h t) each
            err = finite_difference_error(first[pos], n_vals, np.full(s.size, f_abs),
                                          np.maximum(h * t, 1e-300), np.full(s.size, s.eps),
                                          1.0)
            ex = excess(n_vals, a, err, atol_, rtol_)
        # no value of f at the smallest step (a domain edge): nothing to compare there
        ex = np.where(np.isfinite(n_vals) | ~np.isfinite(a), ex, -np.inf)
        if np.any(ex > 0):
            j = int(np.argmax(ex))
            cause = ("the Hessian-vector product is None: the gradient of f is not "
                     "differentiable (a backward without create_graph support, "
                     "@once_differentiable, or non-autograd operations inside the backward)"
                     if a_raw is None else
                     "the double backward is wrong, or f is not twice differentiable here")
            raise GradcheckError(
                f"d^2 {out.name} / d {s.element(j)} d v (Hessian-vector product, seed={seed}): "
                f"numerical {n_vals[j]:.10g} vs analytical {a[j]:.10g}; likely cause: {cause}.\n"
                f"  numerical: nd.hvp, mixed second differences of f itself along e_j and a "
                f"seeded random v; analytical: autodiff's double backward.\n"
                f"  tolerance: {tolerance_terms(float(err[j]), atol_, rtol_ * abs(a[j]))}")


def _device(values: np.ndarray, like: Any) -> Any:
    from ._numerical import _device_array

    return _device_array(values, like)
