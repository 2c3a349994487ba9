"""A black-box numpy function as a ``torch.autograd.Function`` with finite-difference rules.

Reached as ``nd.torch`` after ``import numdiffx as nd``; importing it imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from numdiffx._core.api import jacobian, jvp

__all__ = ["fd_function"]


def _host(t: Any) -> np.ndarray:
    """The tensor as a private numpy copy on the host (an explicit device -> host copy).

    Inside ``torch.func`` transforms the saved tensors are functorch wrappers; the rule
    needs their values, so the wrappers are peeled off first.
    """
    functorch = torch._C._functorch
    while functorch.is_functorch_wrapped_tensor(t):
        if functorch.is_batchedtensor(t):
            raise NotImplementedError(
                "vmap over a derivative of an fd_function (vmap(grad(...)), jacfwd) is not "
                "supported: the rule needs one concrete x. Loop over the batch instead; vmap of "
                "the function itself, grad, vjp, jacrev and jvp are supported.")
        t = functorch.get_unwrapped(t)
    with torch._C._DisableFuncTorch():
        return np.array(t.detach().to("cpu").numpy(), copy=True)


def _back(a: Any, like: Any) -> Any:
    """A numpy result as a tensor of ``like``'s dtype on ``like``'s device (host -> device)."""
    return torch.as_tensor(np.asarray(a)).to(dtype=like.dtype, device=like.device)


def fd_function(f: Callable[..., Any], *, method: object = "central", step: object = None,
                sparsity: object = None, evaluation: str = "loop",
                chunk_size: int | None = None, executor: object = None) -> Callable[[Any], Any]:
    """Wrap a function torch cannot differentiate into a differentiable torch function.

    ``f`` takes one numpy array and returns one numpy array (any shapes; it may call
    numpy, scipy, Fortran, a simulation). The returned callable takes a tensor ``x``
    and returns ``f(x)`` as a tensor of ``x``'s dtype on ``x``'s device, with:

    - backward (reverse mode, ``.backward()``, ``torch.autograd.grad``): the VJP
      ``g @ J(x)`` with ``J = nd.jacobian(f, x)``. Cost: one Jacobian per backward,
      i.e. ``2 * x.numel()`` calls of f for central differences (or 2 per colour with
      ``sparsity=``), plus nothing during forward.
    - forward mode (``torch.func.jvp``, ``torch.autograd.forward_ad``): ``J(x) v`` from
      ONE directional difference, ``nd.jvp(f, x, v)``: 2 calls of f for central.

    The derivative rules are first order (no double backward).

    Host transfer: f always receives host numpy arrays. A CUDA tensor is copied to the
    host (``x.detach().cpu().numpy()``) before f and the results are copied back to
    ``x.device``; these copies are explicit and synchronous.

    Parameters
    ----------
    f : callable
        ``f(x: np.ndarray) -> np.ndarray``.
    method, step, sparsity, evaluation, chunk_size, executor
        As in :func:`numdiffx.jacobian` (``evaluation`` defaults to ``"loop"``, one call
        of f per point; pass ``"batched"`` if f accepts a leading batch axis).

    Returns
    -------
    callable
        ``fn(x: torch.Tensor) -> torch.Tensor``, usable inside any torch program.

    Examples
    --------
    >>> import numpy as np, torch, numdiffx as nd
    >>> fn = nd.torch.fd_function(lambda a: np.sin(a) * a)  # a numpy black box
    >>> x = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    >>> fn(x).sum().backward()
    >>> exact = (torch.sin(x) + x * torch.cos(x)).detach()
    >>> float((x.grad - exact).abs().max()) < 1e-8
    True
    """
    if not callable(f):
        raise TypeError(f"f must be callable; got a {type(f).__name__}.")
    options: dict[str, Any] = dict(method=method, step=step, evaluation=evaluation,
                                   executor=executor)
    jac_options = dict(options, chunk_size=chunk_size)
    if sparsity is not None:
        jac_options.update(sparsity=sparsity, sparse_output=False)

    class _FiniteDifference(torch.autograd.Function):
        @staticmethod
        def forward(x: Any) -> Any:  # type: ignore[override]
            return _back(f(_host(x)), x)

        @staticmethod
        def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
            (x,) = inputs
            ctx.save_for_backward(x)
            ctx.save_for_forward(x)

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx: Any, grad_out: Any) -> Any:  # type: ignore[override]
            (x,) = ctx.saved_tensors
            J = _back(jacobian(f, _host(x), **jac_options), x)  # out.shape + in.shape
            # contracted by torch, so that vmap over cotangents (torch.func.jacrev) works
            return torch.tensordot(grad_out, J, dims=J.ndim - x.ndim)

        @staticmethod
        def vmap(info: Any, in_dims: tuple[Any, ...], x: Any) -> Any:
            # the black box is not batched: evaluate it once per batch element
            rows = [_FiniteDifference.apply(r) for r in x.movedim(in_dims[0], 0)]
            return torch.stack(rows), 0

        @staticmethod
        def jvp(ctx: Any, x_t: Any) -> Any:  # type: ignore[override]
            (x,) = ctx.saved_tensors
            _, jv = jvp(f, _host(x), _host(x_t), **options)
            return _back(jv, x)

    def fn(x: Any) -> Any:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"the wrapped function takes a torch.Tensor; got a "
                            f"{type(x).__name__}. Use f itself for numpy arrays.")
        if not torch.is_floating_point(x):
            raise TypeError(f"the wrapped function differentiates floating tensors; got dtype "
                            f"{x.dtype}. Cast first, e.g. x.double().")
        return _FiniteDifference.apply(x)

    fn.__doc__ = f"{getattr(f, '__name__', 'f')} with finite-difference derivative rules."
    return fn
