"""check_grads: a drop-in for ``jax.test_util.check_grads`` with numdiffx's verdicts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ._gradcheck import gradcheck
from ._gradgrad import first_backward

__all__ = ["check_grads"]

_MODES = ("fwd", "rev", "lin")


def _tolerance(value: object, args: Sequence[Any], name: str) -> float | None:
    """jax accepts a number or a {dtype: tolerance} dict; take the loosest that applies."""
    if value is None or not isinstance(value, Mapping):
        return value  # type: ignore[return-value]
    present = {np.dtype(str(a.dtype)) for a in args if hasattr(a, "dtype")}
    chosen = [float(v) for k, v in value.items() if np.dtype(k) in present]
    if not chosen:
        raise ValueError(f"{name}={value!r} names none of the argument dtypes "
                         f"{sorted(str(d) for d in present)}.")
    return max(chosen)


def check_grads(f: Callable[..., Any], args: Sequence[Any], order: int,
                modes: Sequence[str] = ("fwd", "rev"), atol: object = None,
                rtol: object = None, eps: float | None = None, *, seed: int = 0,
                checkpoint: object = None, progress: object = None) -> None:
    """Check derivatives of ``f`` at ``args`` up to ``order``: ``jax.test_util.check_grads``.

    Same signature and meaning as jax's (which works on jax functions): ``modes``
    ``"fwd"`` checks forward mode (``jax.jvp``; ``"lin"`` is the same derivative through
    ``jax.linearize``), ``"rev"`` reverse mode (``jax.vjp``), each along one seeded
    random direction (gradcheck's ``fast_mode``); ``order=2`` also checks the first
    backward's derivatives (:func:`gradgradcheck`), and so on recursively. ``eps`` is
    the fixed step when given; ``atol``/``rtol`` (numbers or ``{dtype: tol}`` dicts, as
    jax) are added to numdiffx's finite-difference error estimate, so a check near a pole
    or in a steep region does not fail on the numerical side's error. Default: numdiffx's
    auto step and tolerances. Works on torch tensors too. ``checkpoint`` and ``progress``
    (numdiffx's) are passed to :func:`gradcheck`.

    Raises
    ------
    GradcheckError
        An ``AssertionError``, as jax's, whose first line names the element and the cause.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, numdiffx as nd
    >>> with jax.enable_x64(True):
    ...     nd.check_grads(jnp.sin, (jnp.array([0.5, 1.0]),), order=2)
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"order must be an int >= 1; got {order!r}.")
    if isinstance(modes, str) or not modes or any(m not in _MODES for m in modes):
        raise ValueError(f"modes must be a non-empty sequence of {_MODES}; got {modes!r}.")
    args = tuple(args)
    fwd = "fwd" in modes or "lin" in modes
    rev = "rev" in modes
    atol_ = _tolerance(atol, args, "atol")
    rtol_ = _tolerance(rtol, args, "rtol")
    gradcheck(f, args, eps=eps, atol=atol_, rtol=rtol_, fast_mode=True, check_forward_ad=fwd,
              check_backward_ad=rev, check_undefined_grad=False, seed=seed,
              checkpoint=checkpoint, progress=progress)
    if order > 1:
        _, g, g_args, _, _, _ = first_backward(f, args, None, seed)
        check_grads(g, tuple(g_args), order - 1, modes, atol, rtol, eps, seed=seed,
                    checkpoint=checkpoint, progress=progress)
