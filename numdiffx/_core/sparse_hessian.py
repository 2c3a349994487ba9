"""``hessian(..., sparsity=...)``: the sparse Hessian from f or from a gradient.

The pattern (given, or detected at x: :mod:`numdiffx._core.hessian_detect`) is made
symmetric with its diagonal (:func:`numdiffx._core.symmetric.hessian_pattern`); then
from f the dense Hessian's plan runs on its pairs only, from g the Jacobian of g by a
star colouring (:mod:`numdiffx._core.plans.sparse_hessian`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from .from_gradient import _gradient_problem
from .hessian_detect import detect_hessian, detect_hessian_from_gradient
from .plans.sparse_hessian import SparseHessianPlan, StarColouredPlan
from .problem import build_problem
from .symmetric import hessian_pattern
from .validation import Options, input_iv, sparse_output_iv

__all__ = ["sparse_hessian"]


def sparse_hessian(f: Callable[..., Any] | None, grad: Callable[..., Any] | None,
                   args: Sequence[Any], argnum: int, opts: Options, sparsity: object,
                   sparse_output: object, f0: Any, grad0: Any, full_output: bool) -> Any:
    """The Hessian of f (or the Jacobian of ``grad``) on a symmetric pattern."""
    sparse_output_iv(sparse_output)
    if isinstance(sparsity, str) and sparsity != "detect":
        raise ValueError(f"sparsity={sparsity!r} is not known; use 'detect', a boolean mask, "
                         "a scipy.sparse matrix, a (rows, cols) pair or a SparsityPattern.")
    name = f"args[{argnum}]"
    pattern = None
    if not isinstance(sparsity, str):  # refused before f is called
        _, xv = input_iv(args[argnum], name, opts.method)
        pattern = hessian_pattern(sparsity, math.prod(xv.shape))
    if grad is not None:
        prob = _gradient_problem(grad, args, argnum, opts, (name,), grad0)
    else:
        assert f is not None
        prob = build_problem(f, args, (argnum,), opts, (name,), f0=f0, second_order=True)
        if prob.out_shape != ():
            raise ValueError(f"hessian with sparsity= needs a scalar-valued f; f returned "
                             f"shape {prob.out_shape}. Differentiate each output on its own, "
                             "or drop sparsity=.")
    if pattern is None:
        detector = detect_hessian if grad is None else detect_hessian_from_gradient
        pattern = detector(prob, opts.chunk_size, opts.memory_budget)
    kind = SparseHessianPlan if grad is None else StarColouredPlan
    plan = kind(prob, opts.method, pattern, sparse_output=bool(sparse_output),
                chunk_size=opts.chunk_size, memory_budget=opts.memory_budget)
    return plan.compute(opts.rule, full_output)
