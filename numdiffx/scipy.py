"""Solver-ready derivatives for SciPy: ``jac``, ``hess`` and ``hessp`` callables.

Reached as ``nd.scipy`` (or ``import numdiffx.scipy``); importing it does not import
SciPy, creating one of its callables does (``pip install 'numdiffx[scipy]'``).

=============================  ==========================================================
:class:`Jacobian`              ``least_squares(J.fun, x0, jac=J)``, ``root(J.fun, x0, jac=J)``
:class:`IvpJacobian`           ``solve_ivp(J.fun, t_span, y0, method="BDF", jac=J)``
:class:`Gradient`              ``minimize(G.fun, x0, jac=G)``
:class:`Hessian`               ``minimize(f, x0, jac=H.grad, hess=H, method="trust-exact")``
:class:`HessianProduct`        ``minimize(f, x0, jac=Hp.grad, hessp=Hp, method="Newton-CG")``
=============================  ==========================================================

Reusing f(x)
------------
SciPy hands ``f0 = f(x)`` to its own finite differences (``approx_derivative(f0=)``,
the ODE solvers' ``num_jac``) but never to a user's ``jac``: that gets ``x`` (or
``(t, y)``) alone. So each callable here carries a wrapper of the function -- ``.fun``
(``.grad`` for the gradient-based Hessians) -- that remembers the solver's last few
evaluations (``memo_size``, default 8, keyed by the exact x, t and the identity of the
extra ``args``). Pass the wrapper to the solver in place of the function: a derivative
at a point the solver has evaluated then reuses that value (one evaluation fewer: a
forward Jacobian costs ``n`` points, SciPy's ``'2-point'`` count), and a value the
callable computed is served back to the solver without calling f again. f must be
deterministic (the solver assumes so too); ``memo_size=0`` turns the memory off.

Everything else is :func:`numdiffx.jacobian` and friends: ``method``, ``step`` and
``evaluation`` mean what they mean there. A sparsity pattern (or ``"detect"``) is
normalised, or detected, once at the first call and kept with its colouring
(``.pattern``) for every later call.

Counting: ``nfev`` is the evaluations the derivatives took (stencil points, and the
probes of a detected pattern); ``.fun.calls`` (``.grad.calls``) the evaluations made
through the wrapper -- the solver's own, and f(x) where the callable needed one the
solver had not evaluated (the solver then gets it from memory). Their sum is the
total cost, comparable with SciPy's ``nfev`` (``njev`` for gradients).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from numdiffx._core.api import _first_derivative, gradient, jacobian
from numdiffx._core.api_second import hessian, hvp
from numdiffx._core.evaluation.points import DEFAULT_MEMORY_BUDGET
from numdiffx._core.sparse import SparsityPattern, detect_sparsity
from numdiffx._core.validation import callable_iv, options_iv

__all__ = ["Gradient", "Hessian", "HessianProduct", "IvpJacobian", "Jacobian"]


def _require_scipy() -> None:
    try:
        import scipy  # noqa: F401
    except ImportError:
        raise ImportError("numdiffx.scipy needs SciPy, which is not installed: pip install "
                          "'numdiffx[scipy]'.") from None


def _memo_size_iv(memo_size: object) -> int:
    if isinstance(memo_size, bool) or not isinstance(memo_size, int) or memo_size < 0:
        raise ValueError(f"memo_size must be a non-negative int (how many recent "
                         f"evaluations to remember; 0 turns it off); got {memo_size!r}.")
    return memo_size


class _Memo:
    """The last ``size`` evaluations, by the exact bytes of x (and the time, for ODEs).

    An entry also holds the extra positional/keyword arguments of its call, compared by
    identity (the solver passes the same objects on every call; the entry keeps them
    alive, so an identity cannot be reused while it is remembered). Lookups are one dict
    access: the solver calls f thousands of times.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: dict[tuple[Any, ...], tuple[tuple[Any, ...], dict[str, Any],
                                                  np.ndarray]] = {}
        self.hits = 0

    @staticmethod
    def _key(t: Any, x: np.ndarray) -> tuple[Any, ...]:
        return (t, x.shape, x.dtype.str, x.tobytes())

    def get(self, t: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
            x: np.ndarray) -> np.ndarray | None:
        entry = self.entries.get(self._key(t, x)) if self.size else None
        if entry is None:
            return None
        eargs, ekw, value = entry
        if (len(eargs) != len(args) or any(a is not b for a, b in zip(eargs, args))
                or ekw.keys() != kwargs.keys() or any(ekw[k] is not kwargs[k] for k in ekw)):
            return None
        self.hits += 1
        return value

    def put(self, t: Any, args: tuple[Any, ...], kwargs: dict[str, Any], x: np.ndarray,
            value: Any) -> None:
        if self.size:
            key = self._key(t, x)
            self.entries.pop(key, None)
            self.entries[key] = (args, dict(kwargs), np.array(value, copy=True))
            if len(self.entries) > self.size:
                del self.entries[next(iter(self.entries))]


class _Remembered:
    """``fn(x, *args, **kwargs)`` that remembers its values (and serves them again)."""

    def __init__(self, fn: Callable[..., Any], memo: _Memo, name: str) -> None:
        self.fn, self.memo, self.name = fn, memo, name
        self.calls = 0  # calls of the user's function made through this wrapper

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        key = np.asarray(x)
        known = self.memo.get(None, args, kwargs, key)
        if known is not None:
            return known.copy()  # the solver may write into what it gets
        value = self.fn(x, *args, **kwargs)
        self.calls += 1
        self.memo.put(None, args, kwargs, key, value)
        return value

    def at(self, x: np.ndarray, args: tuple[Any, ...], kwargs: dict[str, Any]) -> np.ndarray:
        """The value at x: remembered, or evaluated now through this wrapper (counted in
        ``calls``, remembered, and so served to the solver if it asks next)."""
        known = self.memo.get(None, args, kwargs, x)
        if known is not None:
            return known
        return np.asarray(self(x, *args, **kwargs))

    def __repr__(self) -> str:
        return f"<remembering {self.name} of {self.fn!r}>"


class _Base:
    """Options shared by the callables, validated where they are written."""

    def __init__(self, method: object, step: object, evaluation: str, memo_size: object,
                 default_method: str | None, operation: str, batch_axis: int = 0) -> None:
        _require_scipy()
        self.method = default_method if method is None else method
        # every option fails here, naming itself, not inside the solver at its first call
        opts = options_iv(self.method or "central", step, evaluation, None,
                          DEFAULT_MEMORY_BUDGET, batch_axis, operation=operation)
        _first_derivative(opts, operation.split("_")[0])
        self.step, self.evaluation = step, evaluation
        self._memo = _Memo(_memo_size_iv(memo_size))
        self.nfev = 0  #: evaluations the derivatives took (points; not f(x) itself)
        self.ncalls = 0  #: times the solver called this callable

    @property
    def memo_hits(self) -> int:
        """How often a remembered value was reused (by the derivative or the solver)."""
        return self._memo.hits

    def _evaluated(self, fn: Callable[..., Any], args: tuple[Any, ...] = (),
                   kwargs: dict[str, Any] | None = None, batch_axis: int | None = None
                   ) -> Callable[[Any], Any]:
        """``x -> fn(x, *args, **kwargs)``, each point counted in ``nfev`` (a batched call:
        its rows along ``batch_axis``). The derivative then needs no ``full_output`` pass
        to report its evaluations, and the solver's extra arguments never reach the engine
        (nothing in them is perturbed, broadcast or batched)."""
        kw = kwargs or {}

        def call(x: Any) -> Any:
            self.nfev += 1 if batch_axis is None else int(np.shape(x)[batch_axis])
            return fn(x, *args, **kw)

        return call

    def _done(self, value: Any) -> Any:
        self.ncalls += 1
        return value

    def _options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"step": self.step, "evaluation": self.evaluation}
        if self.method is not None:
            opts["method"] = self.method
        return opts


class _Patterned(_Base):
    """A Jacobian with an optional sparsity pattern kept (with its colouring) across calls."""

    def __init__(self, fun: Callable[..., Any], method: object, step: object,
                 sparsity: object, sparse_output: bool, evaluation: str,
                 memo_size: object) -> None:
        callable_iv(fun, "fun")
        super().__init__(method, step, evaluation, memo_size, "forward",
                         "jacobian" if sparsity is None else "sparse jacobian",
                         1 if evaluation == "batched" else 0)
        if not (sparsity is None or isinstance(sparsity, (str, SparsityPattern, tuple))
                or hasattr(sparsity, "tocoo") or hasattr(sparsity, "shape")):
            raise TypeError("sparsity must be None, 'detect', a boolean array, a scipy.sparse "
                            "matrix, a (rows, cols) pair or a SparsityPattern; got "
                            f"{type(sparsity).__name__}.")
        if isinstance(sparsity, str) and sparsity != "detect":
            raise ValueError(f"sparsity={sparsity!r} is not known; use 'detect', a boolean "
                             "mask, a scipy.sparse matrix, a (rows, cols) pair or a pattern.")
        self._sparsity = sparsity
        self.sparse_output = sparse_output
        #: the SparsityPattern used (normalised or detected at the first call), or None
        self.pattern: SparsityPattern | None = None

    def _jacobian(self, fx: Callable[[Any], Any], x: np.ndarray, f0: np.ndarray,
                  single: Callable[[Any], Any], batch_axis: int = 0) -> Any:
        """The Jacobian of ``fx`` (counted) at x with ``f0``; ``single`` (counted) evaluates
        one point: the pattern is detected with it, one point per call, once."""
        if self._sparsity is not None and self.pattern is None:
            if isinstance(self._sparsity, str):
                self.pattern = detect_sparsity(single, x, evaluation="loop")
            else:
                shape = (int(np.size(f0)), int(x.size))
                self.pattern = SparsityPattern.from_any(self._sparsity, shape)
        return self._done(jacobian(fx, x, **self._options(), sparsity=self.pattern,
                                   sparse_output=self.sparse_output, batch_axis=batch_axis,
                                   f0=f0))


class Jacobian(_Patterned):
    """``jac`` for :func:`scipy.optimize.least_squares` and :func:`scipy.optimize.root`.

    ``J = nd.scipy.Jacobian(fun)``, then ``least_squares(J.fun, x0, jac=J)`` (or
    ``root(J.fun, x0, jac=J)``): ``J(x, *args, **kwargs)`` returns the ``(m, n)``
    Jacobian of ``fun`` at x, reusing the f(x) the solver evaluated through ``J.fun``.

    Parameters
    ----------
    fun : callable
        The residuals ``fun(x, *args, **kwargs)`` -> ``(m,)``, as given to the solver.
    method : str or method object
        Default ``"forward"``: ``n`` evaluations per Jacobian with f(x) reused (SciPy's
        ``'2-point'`` count), ``O(sqrt(eps))`` relative accuracy -- enough for every
        least-squares problem measured (docs: "numdiffx with SciPy solvers").
        ``"central"``: ``2 n`` (``'3-point'``), ``O(eps**(2/3))``.
    step : None, float or step rule
        As in :func:`numdiffx.jacobian` (default: the ``auto`` step).
    sparsity : None, "detect", bool array, scipy.sparse matrix, (rows, cols) or SparsityPattern
        The Jacobian's structure (``jac_sparsity`` in SciPy's terms). Normalised -- or
        detected (``"detect"``: about ``2 n`` evaluations, once) -- at the first call
        and kept, with its colouring, as ``J.pattern``; each Jacobian then costs one
        evaluation per colour (forward). least_squares needs ``tr_solver="lsmr"`` for
        a sparse Jacobian.
    sparse_output : bool
        With ``sparsity``: return ``scipy.sparse.csr_array`` (default) or dense.
    evaluation : {"auto", "batched", "vmap", "loop"}
        As in :func:`numdiffx.jacobian` (numpy's ``"auto"`` is one call per point).
    memo_size : int
        How many of the solver's recent evaluations ``J.fun`` remembers (0: none).

    Attributes
    ----------
    fun : callable
        ``fun`` remembering its recent values: give it to the solver.
    pattern : SparsityPattern or None
        The pattern in use after the first call.
    nfev, ncalls, memo_hits : int
        Evaluations the Jacobians took (f(x) is counted in ``fun.calls``), Jacobians
        computed, remembered values reused.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> from scipy.optimize import least_squares
    >>> def rosenbrock(x):
    ...     return np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]])
    >>> J = nd.scipy.Jacobian(rosenbrock)
    >>> res = least_squares(J.fun, np.array([-1.2, 1.0]), jac=J)
    >>> bool(np.allclose(res.x, [1.0, 1.0])), J.nfev == 2 * J.ncalls   # n = 2 per Jacobian
    (True, True)
    """

    def __init__(self, fun: Callable[..., Any], *, method: object = None, step: object = None,
                 sparsity: object = None, sparse_output: bool = True, evaluation: str = "auto",
                 memo_size: int = 8) -> None:
        super().__init__(fun, method, step, sparsity, sparse_output, evaluation, memo_size)
        self.fun = _Remembered(fun, self._memo, "fun")

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        x = np.asarray(x)
        f0 = self.fun.at(x, args, kwargs)
        batched = 0 if self.evaluation == "batched" else None
        return self._jacobian(self._evaluated(self.fun.fn, args, kwargs, batched), x, f0,
                              self._evaluated(self.fun.fn, args, kwargs))


class IvpJacobian(_Patterned):
    """``jac`` for :func:`scipy.integrate.solve_ivp`'s implicit methods (BDF, Radau, LSODA).

    ``J = nd.scipy.IvpJacobian(fun)``, then
    ``solve_ivp(J.fun, t_span, y0, method="BDF", jac=J)``: ``J(t, y)`` returns the
    ``(n, n)`` Jacobian ``d fun(t, y) / dy``, reusing the ``fun(t, y)`` the solver
    evaluated through ``J.fun`` (BDF asks for the Jacobian at its Newton starting
    point, which it evaluated a few calls earlier: ``memo_size`` covers that).

    Parameters
    ----------
    fun : callable
        ``fun(t, y, *args)`` -> ``(n,)``, as given to solve_ivp.
    method : str or method object
        Default ``"forward"``: Newton's iteration needs a Jacobian of a few correct
        digits, not ten; ``n`` evaluations per Jacobian (one per colour with
        ``sparsity``), as the solvers' own ``num_jac``.
    step : None, float or step rule
        As in :func:`numdiffx.jacobian`.
    sparsity : None, "detect", bool array, scipy.sparse matrix, (rows, cols) or SparsityPattern
        The Jacobian's structure (solve_ivp's ``jac_sparsity``), kept with its colouring
        across calls; the result is then a ``scipy.sparse.csr_array``, which the solvers
        factorise sparsely.
    sparse_output : bool
        With ``sparsity``: sparse (default) or dense result.
    vectorized : bool
        ``fun`` accepts ``y`` of shape ``(n, k)`` and returns ``(n, k)`` (solve_ivp's
        ``vectorized=True``): all perturbed states go in one call (numdiffx's
        ``evaluation="batched"`` with ``batch_axis=1``; each call carries y itself as
        one more column, checked against ``fun(t, y)``). Pass the same flag to
        solve_ivp.
    memo_size : int
        How many of the solver's recent evaluations ``J.fun`` remembers (0: none).

    Attributes
    ----------
    fun : callable
        ``fun`` remembering its recent values: give it to solve_ivp.
    pattern : SparsityPattern or None
        The pattern in use after the first call.
    nfev, ncalls, memo_hits : int
        As in :class:`Jacobian`.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> from scipy.integrate import solve_ivp
    >>> def van_der_pol(t, y, mu=1000.0):
    ...     return np.array([y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]])
    >>> J = nd.scipy.IvpJacobian(van_der_pol)
    >>> sol = solve_ivp(J.fun, (0.0, 3000.0), np.array([2.0, 0.0]), method="Radau", jac=J)
    >>> bool(sol.success), sol.njev == J.ncalls, J.nfev == 2 * J.ncalls   # n = 2 each
    (True, True, True)
    """

    def __init__(self, fun: Callable[..., Any], *, method: object = None, step: object = None,
                 sparsity: object = None, sparse_output: bool = True, vectorized: bool = False,
                 memo_size: int = 8) -> None:
        if not isinstance(vectorized, bool):
            raise TypeError(f"vectorized must be True or False; got {vectorized!r}.")
        super().__init__(fun, method, step, sparsity, sparse_output,
                         "batched" if vectorized else "auto", memo_size)
        self.vectorized = vectorized
        self.fun = _RememberedOde(fun, self._memo, vectorized)

    def __call__(self, t: Any, y: Any, *args: Any) -> Any:
        y = np.asarray(y)
        f0 = self.fun.at(t, y, args)
        fun = self.fun.fn

        def single(z: Any) -> Any:
            return fun(t, z[:, None], *args)[:, 0] if self.vectorized else fun(t, z, *args)

        batched = 1 if self.vectorized else None
        return self._jacobian(self._evaluated(lambda z: fun(t, z, *args), batch_axis=batched),
                              y, f0, self._evaluated(single), batch_axis=batched or 0)


class _RememberedOde:
    """``fun(t, y, *args)`` that remembers its values at single states (y of shape (n,),
    or (n, 1) when vectorized) and serves them again."""

    def __init__(self, fn: Callable[..., Any], memo: _Memo, vectorized: bool) -> None:
        self.fn, self.memo, self.vectorized = fn, memo, vectorized
        self.calls = 0

    def __call__(self, t: Any, y: Any, *args: Any) -> Any:
        key = np.asarray(y)
        column = self.vectorized and key.ndim == 2 and key.shape[1] == 1
        single = key.ndim == 1 or column
        state = key[:, 0] if column else key
        if single:
            known = self.memo.get(t, args, {}, state)
            if known is not None:  # a copy: the solver may write into what it gets
                return known[:, None].copy() if column else known.copy()
        value = self.fn(t, y, *args)
        self.calls += 1
        if single:
            self.memo.put(t, args, {}, state, np.asarray(value)[:, 0] if column else value)
        return value

    def at(self, t: Any, y: np.ndarray, args: tuple[Any, ...]) -> np.ndarray:
        """fun(t, y) for one state: remembered, or evaluated now (and remembered)."""
        known = self.memo.get(t, args, {}, y)
        if known is not None:
            return known
        value = np.asarray(self(t, y[:, None] if self.vectorized else y, *args))
        return value[:, 0] if self.vectorized else value


class Gradient(_Base):
    """``jac`` for :func:`scipy.optimize.minimize` from values of f.

    ``G = nd.scipy.Gradient(f)``, then ``minimize(G.fun, x0, jac=G)``: ``G(x, *args)``
    is the gradient at x, reusing the f(x) the solver evaluated through ``G.fun``.

    Parameters
    ----------
    fun : callable
        The objective ``fun(x, *args)`` -> scalar.
    method : str or method object
        Default ``"central"``: ``2 n`` evaluations (SciPy's ``'3-point'``) for
        ``O(eps**(2/3))``; near a minimum the gradient is small and a forward
        difference's ``O(sqrt(eps) |f|)`` error can stall the line search before
        ``gtol``. ``"forward"``: ``n`` (``'2-point'``).
    step, evaluation, memo_size
        As in :class:`Jacobian`.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> from scipy.optimize import minimize, rosen
    >>> G = nd.scipy.Gradient(rosen)
    >>> res = minimize(G.fun, np.full(4, 0.5), jac=G, method="BFGS")
    >>> bool(np.allclose(res.x, 1.0, atol=1e-4))
    True
    """

    def __init__(self, fun: Callable[..., Any], *, method: object = None, step: object = None,
                 evaluation: str = "auto", memo_size: int = 8) -> None:
        callable_iv(fun, "fun")
        super().__init__(method, step, evaluation, memo_size, "central", "gradient")
        self.fun = _Remembered(fun, self._memo, "fun")

    def __call__(self, x: Any, *args: Any) -> Any:
        x = np.asarray(x)
        f0 = self.fun.at(x, args, {})
        batched = 0 if self.evaluation == "batched" else None
        return self._done(gradient(self._evaluated(self.fun.fn, args, batch_axis=batched), x,
                                   **self._options(), f0=f0))


class _Second(_Base):
    """Shared by Hessian and HessianProduct: differences of grad, or of fun's values."""

    _operation: ClassVar[str]  # "hessian" or "hvp"

    def __init__(self, fun: Callable[..., Any] | None = None, *,
                 grad: Callable[..., Any] | None = None, method: object = None,
                 step: object = None, evaluation: str = "auto", memo_size: int = 8) -> None:
        if grad is None and fun is None:
            raise TypeError("pass fun (the objective) or grad= (its gradient); the gradient "
                            "is cheaper: n gradient calls per Hessian instead of 2 n**2 + 2 n "
                            "values of fun.")
        if grad is not None:
            callable_iv(grad, "grad")
        if fun is not None:
            callable_iv(fun, "fun")
        op = self._operation
        super().__init__(method, step, evaluation, memo_size, None,
                         op if grad is None else f"{op}_from_gradient")
        self.fun = _Remembered(fun, self._memo, "fun") if grad is None and fun else None
        self.grad = _Remembered(grad, self._memo, "grad") if grad is not None else None

    def _known(self, x: np.ndarray, args: tuple[Any, ...]) -> dict[str, Any]:
        """The arguments reusing the gradient (or f) at x: grad=, grad0= (or f0=)."""
        if self.grad is not None:
            return {"grad": self._evaluated(self.grad.fn, args, batch_axis=self._batch_axis),
                    "grad0": self.grad.at(x, args, {})}
        assert self.fun is not None
        return {"f0": self.fun.at(x, args, {})}

    def _function(self, args: tuple[Any, ...]) -> Callable[[Any], Any] | None:
        return None if self.fun is None else self._evaluated(self.fun.fn, args,
                                                             batch_axis=self._batch_axis)

    @property
    def _batch_axis(self) -> int | None:
        return 0 if self.evaluation == "batched" else None


class Hessian(_Second):
    """``hess`` for :func:`scipy.optimize.minimize` (trust-exact, trust-krylov, Newton-CG).

    From a gradient: ``H = nd.scipy.Hessian(grad=g)``, then
    ``minimize(f, x0, jac=H.grad, hess=H, method="trust-exact")``; ``H(x, *args)`` is
    the Jacobian of g, symmetrised (:func:`numdiffx.hessian` with ``grad=``), reusing
    the g(x) the solver evaluated through ``H.grad``: ``n`` gradient calls per Hessian
    (forward, the default; SciPy's ``hess='2-point'``), ``2 n`` central.
    From values of f alone: ``H = nd.scipy.Hessian(f)``, then
    ``minimize(H.fun, x0, hess=H, ...)``: second-derivative stencils, ``2 n**2 + 2 n``
    evaluations (central) -- give the gradient when you have it.

    Parameters
    ----------
    fun : callable, optional
        The objective ``fun(x, *args)``; used only without ``grad``.
    grad : callable, optional
        Its gradient ``grad(x, *args)`` -> ``(n,)``.
    method : str or method object, optional
        As in :func:`numdiffx.hessian` (default ``"forward"`` with ``grad``, else
        ``"central"``).
    step, evaluation, memo_size
        As in :class:`Jacobian`.
    sparsity, sparse_output
        As in :func:`numdiffx.hessian`: a symmetric pattern (or ``"detect"``, once, at the
        first call), kept with its star colouring as ``H.pattern``; ``H(x)`` is then a
        ``scipy.sparse.csr_array`` (``method="trust-constr"`` takes it), from ``2 c``
        gradient calls central (``c`` colours: 3 on a band, 2 on an arrowhead).

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> from scipy.optimize import minimize, rosen, rosen_der
    >>> H = nd.scipy.Hessian(grad=rosen_der)
    >>> res = minimize(rosen, np.full(4, 0.5), jac=H.grad, hess=H, method="trust-exact")
    >>> bool(np.allclose(res.x, 1.0)), H.nfev == 4 * H.ncalls     # n = 4 gradient calls
    (True, True)
    """

    _operation = "hessian"

    def __init__(self, fun: Callable[..., Any] | None = None, *,
                 grad: Callable[..., Any] | None = None, method: object = None,
                 step: object = None, evaluation: str = "auto", memo_size: int = 8,
                 sparsity: object = None, sparse_output: bool = True) -> None:
        super().__init__(fun, grad=grad, method=method, step=step, evaluation=evaluation,
                         memo_size=memo_size)
        if isinstance(sparsity, str) and sparsity != "detect":
            raise ValueError(f"sparsity={sparsity!r} is not known; use 'detect', a boolean "
                             "mask, a scipy.sparse matrix, a (rows, cols) pair or a pattern.")
        self._sparsity, self.sparse_output = sparsity, sparse_output
        #: the symmetric SparsityPattern used (given or detected at the first call), or None
        self.pattern: SparsityPattern | None = None

    def __call__(self, x: Any, *args: Any) -> Any:
        x = np.asarray(x)
        fn, known = self._function(args), self._known(x, args)
        if self._sparsity is None:
            return self._done(hessian(fn, x, **self._options(), **known))
        if self.pattern is None:  # normalised or detected once, kept with its colouring
            r = hessian(fn, x, **self._options(), **known, sparsity=self._sparsity,
                        sparse_output=self.sparse_output, full_output=True)
            self.pattern = r.pattern
            return self._done(r.value)
        return self._done(hessian(fn, x, **self._options(), **known, sparsity=self.pattern,
                                  sparse_output=self.sparse_output))


class HessianProduct(_Second):
    """``hessp`` for :func:`scipy.optimize.minimize` (Newton-CG, trust-ncg, trust-krylov).

    From a gradient: ``Hp = nd.scipy.HessianProduct(grad=g)``, then
    ``minimize(f, x0, jac=Hp.grad, hessp=Hp, method="Newton-CG")``; ``Hp(x, p, *args)``
    is ONE directional difference of g (:func:`numdiffx.hvp` with ``grad=``): one
    gradient call per product (forward, the default) once g(x) is known -- the solver
    evaluates it through ``Hp.grad``, or the first product at x does and the rest reuse
    it -- as SciPy's own ``'2-point'``; two central. From values of f alone
    (``HessianProduct(f)``, ``minimize(Hp.fun, x0, hessp=Hp, ...)``): mixed stencils,
    ``4 n`` evaluations per product (central).

    Parameters
    ----------
    fun, grad, method, step, evaluation, memo_size
        As in :class:`Hessian`.

    Examples
    --------
    >>> import numpy as np, numdiffx as nd
    >>> from scipy.optimize import minimize, rosen, rosen_der
    >>> Hp = nd.scipy.HessianProduct(grad=rosen_der)
    >>> res = minimize(rosen, np.full(4, 0.5), jac=Hp.grad, hessp=Hp, method="Newton-CG")
    >>> bool(np.allclose(res.x, 1.0, atol=1e-3)), Hp.nfev == Hp.ncalls  # 1 call/product
    (True, True)
    """

    _operation = "hvp"

    def __call__(self, x: Any, p: Any, *args: Any) -> Any:
        x = np.asarray(x)
        return self._done(hvp(self._function(args), x, np.asarray(p, dtype=x.dtype),
                              **self._options(), **self._known(x, args)))
