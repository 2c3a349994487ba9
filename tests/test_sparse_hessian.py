"""Sparse Hessians: star colouring, from f and from g, detection, layouts, validation."""

from __future__ import annotations

import numpy as np
import pytest

import numdiffx as nd
from numdiffx._core.symmetric import is_star_colouring, star_colouring, symmetric_pattern

# -- problems (batched along leading axes: f(x) of shape (..., n) -> (...)) ---------------
# chained Rosenbrock (tridiagonal), an arrowhead (x_0 couples to all), a 2-D 5-point grid
# energy; each with its gradient and its exact Hessian (numpy)


def rosen(xp, x):
    a, b = x[..., :-1], x[..., 1:]
    return xp.sum(100.0 * (b - a**2) ** 2 + (1.0 - a) ** 2, axis=-1)


def rosen_grad(xp, x):
    a, b = x[..., :-1], x[..., 1:]
    t = b - a**2
    zero = xp.zeros_like(x[..., :1])
    return (xp.concat([-400.0 * a * t - 2.0 * (1.0 - a), zero], axis=-1)
            + xp.concat([zero, 200.0 * t], axis=-1))


def rosen_hess(x):
    n = x.size
    h = np.zeros((n, n))
    d = np.zeros(n)
    d[:-1] += 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    d[1:] += 200
    h[np.arange(n), np.arange(n)] = d
    h[np.arange(n - 1), np.arange(1, n)] = h[np.arange(1, n), np.arange(n - 1)] = -400 * x[:-1]
    return h


def arrow(xp, x):
    h, rest = x[..., :1], x[..., 1:]
    return (xp.sum(0.5 * h**2 * rest**2 + xp.cos(rest), axis=-1)
            + xp.exp(0.1 * x[..., 0]))


def arrow_grad(xp, x):
    h, rest = x[..., :1], x[..., 1:]
    head = h * xp.sum(rest**2, axis=-1, keepdims=True) + 0.1 * xp.exp(0.1 * h)
    return xp.concat([head, h**2 * rest - xp.sin(rest)], axis=-1)


def arrow_hess(x):
    n = x.size
    h = np.zeros((n, n))
    h[0, 0] = np.sum(x[1:] ** 2) + 0.01 * np.exp(0.1 * x[0])
    h[np.arange(1, n), np.arange(1, n)] = x[0] ** 2 - np.cos(x[1:])
    h[0, 1:] = h[1:, 0] = 2 * x[0] * x[1:]
    return h


def grid_problem(a, b):
    def f(xp, x):
        u = xp.reshape(x, (*x.shape[:-1], a, b))
        dx = u[..., :, 1:] - u[..., :, :-1]
        dy = u[..., 1:, :] - u[..., :-1, :]
        return (0.5 * xp.sum(xp.reshape(dx**2, (*x.shape[:-1], -1)), axis=-1)
                + 0.5 * xp.sum(xp.reshape(dy**2, (*x.shape[:-1], -1)), axis=-1)
                + 0.25 * xp.sum(x**4, axis=-1))

    def grad(xp, x):
        u = np.asarray(x).reshape(*x.shape[:-1], a, b)
        g = u**3
        dx = u[..., :, 1:] - u[..., :, :-1]
        g[..., :, 1:] += dx
        g[..., :, :-1] -= dx
        dy = u[..., 1:, :] - u[..., :-1, :]
        g[..., 1:, :] += dy
        g[..., :-1, :] -= dy
        return g.reshape(x.shape)

    def hess(x):
        n = a * b
        h = np.diag(3 * x**2)
        idx = np.arange(n).reshape(a, b)
        for p, q in ((idx[:, 1:], idx[:, :-1]), (idx[1:], idx[:-1])):
            p, q = p.ravel(), q.ravel()
            h[p, q] -= 1
            h[q, p] -= 1
            h[p, p] += 1
            h[q, q] += 1
        return h

    return f, grad, hess


def _point(n, seed=1):
    return np.random.default_rng(seed).uniform(0.0, 2.0, n)


def _dense(value, xb=None):
    """A sparse result (scipy, torch, jax, nd.SparseJacobian) as a dense numpy array."""
    for name in ("toarray", "to_dense", "todense"):
        if hasattr(value, name):
            value = getattr(value, name)()
            break
    return xb.to_numpy(value) if xb is not None else np.asarray(value)


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# -- star colouring ---------------------------------------------------------------------
def _path(n):
    r = np.arange(n - 1)
    return symmetric_pattern(r, r + 1, n)


def _arrowhead(n, hub=0):
    others = np.array([i for i in range(n) if i != hub])
    return symmetric_pattern(np.full(n - 1, hub), others, n)


def _grid(a, b):
    idx = np.arange(a * b).reshape(a, b)
    r = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    c = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    return symmetric_pattern(r, c, a * b)


@pytest.mark.parametrize(("pattern", "colours"), [
    (_path(2000), 3), (_arrowhead(2000), 2), (_arrowhead(2000, hub=1999), 2),
    (_grid(40, 50), 5), (_path(2), 2), (symmetric_pattern(np.zeros(0, np.int64),
                                                          np.zeros(0, np.int64), 4), 1)])
def test_star_colouring_is_valid_and_optimal_on_the_classic_patterns(pattern, colours):
    c = star_colouring(pattern)
    assert is_star_colouring(pattern, c)
    assert int(c.max()) + 1 == colours
    assert star_colouring(pattern) is c  # cached on the pattern


@pytest.mark.parametrize("seed", range(6))
def test_star_colouring_is_valid_on_random_patterns(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    k = int(rng.integers(1, 5)) * n
    p = symmetric_pattern(rng.integers(0, n, k), rng.integers(0, n, k), n)
    assert is_star_colouring(p, star_colouring(p))


def test_the_star_check_refuses_a_proper_colouring_with_a_two_coloured_path():
    p = _path(6)
    assert not is_star_colouring(p, np.arange(6) % 2)  # proper, but 0-1-0-1 is a path
    assert not is_star_colouring(p, np.zeros(6, np.int64))  # not even proper
    assert is_star_colouring(p, np.array([0, 1, 0, 2, 0, 1]))


# -- accuracy and cost at n ~ 2000 (numpy) ------------------------------------------------
def _problems(n):
    a = 40 if n % 40 == 0 else 6
    b = n // a
    gf, gg, gh = grid_problem(a, b)
    return {"rosenbrock": (rosen, rosen_grad, rosen_hess, _path(n), 3),
            "arrowhead": (arrow, arrow_grad, arrow_hess, _arrowhead(n), 2),
            "grid": (gf, gg, gh, _grid(a, b), 5)}


@pytest.mark.parametrize("name", ["rosenbrock", "arrowhead", "grid"])
def test_from_f_accuracy_and_cost_at_n_2000(name):
    n = 2000
    f, _, hess, pattern, _ = _problems(n)[name]
    x = _point(n)
    r = nd.hessian(lambda v: f(np, v), x, sparsity=pattern, evaluation="batched",
                   full_output=True)
    assert _rel(r.value.toarray(), hess(x)) < 1e-5
    assert r.nfev <= 4 * pattern.nnz + 1
    assert r.pattern is pattern


def test_from_f_calls_of_f_counted_one_point_per_call():
    n = 60
    f, _, hess, pattern, _ = _problems(n)["grid"]
    x = _point(n)
    calls = []

    def counted(v):
        calls.append(1)
        return f(np, v)

    r = nd.hessian(counted, x, sparsity=pattern, full_output=True)
    # the diagonal's 4 points, 4 per upper pair, f(x)
    assert len(calls) == r.nfev == 4 * n + 2 * (pattern.nnz - n) + 1 <= 4 * pattern.nnz + 1
    assert _rel(r.value.toarray(), hess(x)) < 1e-5


@pytest.mark.parametrize("method", ["central", "forward"])
@pytest.mark.parametrize("name", ["rosenbrock", "arrowhead", "grid"])
def test_from_g_accuracy_and_cost_at_n_2000(name, method):
    n = 2000
    _, grad, hess, pattern, colours = _problems(n)[name]
    x = _point(n)
    points = 2 if method == "central" else 1
    calls = []

    def g(v):  # one point per call (evaluation="loop", numpy's default)
        calls.append(1)
        return grad(np, v)

    r = nd.hessian(None, x, grad=g, sparsity=pattern, method=method, full_output=True)
    assert _rel(r.value.toarray(), hess(x)) < 1e-6
    assert r.nfev == points * colours + 1 == len(calls)
    assert r.nfev <= points * (colours + 1) + 1
    g0 = grad(np, x)
    r0 = nd.hessian(None, x, grad=lambda v: grad(np, v), grad0=g0, sparsity=pattern,
                    method=method, full_output=True)
    assert r0.nfev == r.nfev - 1
    np.testing.assert_array_equal(r0.value.toarray(), r.value.toarray())


def test_calls_of_g_counted_one_point_per_call():
    n = 300
    _, grad, hess, pattern, _ = _problems(n)["arrowhead"]
    x = _point(n)
    calls = []

    def g(v):
        calls.append(1)
        return arrow_grad(np, v)

    r = nd.hessian(None, x, grad=g, sparsity=pattern, method="central", full_output=True)
    assert len(calls) == r.nfev == 5  # g(x) and 2 points for each of 2 colours
    assert _rel(r.value.toarray(), hess(x)) < 1e-6


# -- the same entries as the dense Hessian, on every backend -----------------------------
def test_from_f_equals_the_dense_hessian_on_the_pattern(xb):
    n = 12
    x64 = _point(n)
    x = xb.asarray(x64)
    mask = _arrowhead(n).to_dense() | _path(n).to_dense()
    dense = nd.hessian(lambda v: arrow(xb.xp, v) + rosen(xb.xp, v), x, evaluation="batched",
                       full_output=True)
    sparse = nd.hessian(lambda v: arrow(xb.xp, v) + rosen(xb.xp, v), x, sparsity=mask,
                        evaluation="batched", sparse_output=False, full_output=True)
    from tests.conftest import assert_array_like

    assert_array_like(sparse.value, xb, x.dtype, (n, n))
    np.testing.assert_array_equal(xb.to_numpy(sparse.value)[mask],
                                  xb.to_numpy(dense.value)[mask])
    for field in ("error", "status"):  # per stored nonzero, row-major
        np.testing.assert_array_equal(xb.to_numpy(getattr(sparse, field)),
                                      xb.to_numpy(getattr(dense, field))[mask])
    assert not np.any(xb.to_numpy(sparse.value)[~mask])
    assert sparse.nfev <= 4 * mask.sum() + 1 < dense.nfev


def test_from_g_on_every_backend(xb):
    n = 30
    x64 = _point(n)
    x = xb.asarray(x64)
    pattern = _arrowhead(n)
    r = nd.hessian(None, x, grad=lambda v: arrow_grad(xb.xp, v), sparsity=pattern,
                   method="central", evaluation="batched", full_output=True)
    assert _rel(_dense(r.value, xb), arrow_hess(x64)) < 1e-8
    assert r.nfev <= 2 * 2 + 1 + 1  # g(x), 2 points for each of 2 colours, a sentinel
    from tests.conftest import assert_array_like

    assert_array_like(r.status, xb, xb.xp.int8, (pattern.nnz,))
    assert_array_like(r.error, xb, x.dtype, (pattern.nnz,))
    dense = nd.hessian(None, x, grad=lambda v: arrow_grad(xb.xp, v), sparsity=pattern,
                       method="central", evaluation="batched", sparse_output=False)
    assert_array_like(dense, xb, x.dtype, (n, n))
    np.testing.assert_array_equal(xb.to_numpy(dense), _dense(r.value, xb))
    found = nd.hessian(None, x, grad=lambda v: arrow_grad(xb.xp, v), sparsity="detect",
                       evaluation="batched", full_output=True)
    np.testing.assert_array_equal(found.pattern.to_dense(), pattern.to_dense())


def test_the_error_estimates_bound_the_true_errors():
    pytest.importorskip("scipy")  # scipy.sparse results (numpy alone: SparseJacobian)
    n = 400
    x = _point(n)
    for kw in ({}, {"grad": lambda v: rosen_grad(np, v), "method": "central"}):
        f = None if kw else (lambda v: rosen(np, v))
        r = nd.hessian(f, x, sparsity=_path(n), evaluation="batched", full_output=True, **kw)
        coo = r.value.tocoo()
        exact = rosen_hess(x)[coo.row, coo.col]
        true = np.abs(coo.data - exact)
        # the estimates (per stored nonzero, row-major as the csr's own order)
        order = np.lexsort((coo.col, coo.row))
        assert np.mean(true[order] <= r.error) > 0.95


def test_sparse_output_types_and_layouts_on_numpy():
    pytest.importorskip("scipy")  # scipy.sparse results (numpy alone: SparseJacobian)
    import scipy.sparse

    n = 10
    x = _point(n)
    h = nd.hessian(lambda v: rosen(np, v), x, sparsity=_path(n))
    assert isinstance(h, scipy.sparse.csr_array) and h.shape == (n, n) and h.nnz == 3 * n - 2
    x2 = x.reshape(2, 5)
    d = nd.hessian(lambda v: rosen(np, v.reshape(-1)), x2, sparsity=_path(n),
                   sparse_output=False)
    assert d.shape == (2, 5, 2, 5)
    np.testing.assert_allclose(d.reshape(n, n), rosen_hess(x), rtol=1e-6, atol=1e-4)


# -- detection ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rosenbrock", "arrowhead", "grid"])
def test_detection_from_f_finds_the_pattern_under_a_tenth_of_the_dense_cost(name):
    n = 2000
    f, _, hess, pattern, _ = _problems(n)[name]
    x = _point(n)
    r = nd.hessian(lambda v: f(np, v), x, sparsity="detect", evaluation="batched",
                   full_output=True)
    np.testing.assert_array_equal(r.pattern.to_dense(), pattern.to_dense())
    assert r.nfev < (2 * n * n + 2 * n + 1) / 10
    assert _rel(r.value.toarray(), hess(x)) < 1e-5


def test_the_detected_pattern_is_returned_for_reuse():
    x = _point(120)
    f = lambda v: rosen(np, v)  # noqa: E731
    r = nd.hessian(f, x, sparsity="detect", full_output=True)
    again = nd.hessian(f, x, sparsity=r.pattern, full_output=True)
    np.testing.assert_array_equal(again.value.toarray(), r.value.toarray())
    assert again.pattern is r.pattern and again.nfev < r.nfev


@pytest.mark.parametrize("name", ["rosenbrock", "arrowhead", "grid"])
def test_detection_from_g_finds_the_pattern_under_a_tenth_of_the_dense_cost(name):
    n = 2000
    _, grad, hess, pattern, colours = _problems(n)[name]
    x = _point(n)
    r = nd.hessian(None, x, grad=lambda v: grad(np, v), sparsity="detect", method="central",
                   full_output=True)
    np.testing.assert_array_equal(r.pattern.to_dense(), pattern.to_dense())
    assert _rel(r.value.toarray(), hess(x)) < 1e-6
    assert r.nfev < (2 * n + 1) / 10  # the dense central Hessian from g: 2 n + 1
    assert r.nfev - (2 * colours + 1) < (n + 1) / 10  # detection alone: forward's


@pytest.mark.parametrize("name", ["rosenbrock", "arrowhead", "grid"])
def test_detection_from_g_batched_is_exact(name):
    n = 400
    _, grad, _, pattern, _ = _problems(n)[name]
    r = nd.hessian(None, _point(n), grad=lambda v: grad(np, v), sparsity="detect",
                   evaluation="batched", full_output=True)
    np.testing.assert_array_equal(r.pattern.to_dense(), pattern.to_dense())


def test_detection_on_every_backend(xb):
    n = 16
    x = xb.asarray(_point(n))
    r = nd.hessian(lambda v: rosen(xb.xp, v) + arrow(xb.xp, v), x, sparsity="detect",
                   evaluation="batched", full_output=True, sparse_output=False)
    want = _path(n).to_dense() | _arrowhead(n).to_dense()
    np.testing.assert_array_equal(r.pattern.to_dense(), want)
    exact = rosen_hess(_point(n)) + arrow_hess(_point(n))
    assert _rel(xb.to_numpy(r.value), exact) < 1e-5


def test_detection_in_loop_mode_and_a_structurally_zero_diagonal():
    x = np.array([0.5, 1.5, -0.7, 2.0])
    f = lambda v: v[0] * v[1] + np.sin(v[2]) * v[3]  # noqa: E731 - H_00 = H_11 = 0
    r = nd.hessian(f, x, sparsity="detect", full_output=True)
    want = np.eye(4, dtype=bool)
    want[0, 1] = want[1, 0] = want[2, 3] = want[3, 2] = True
    np.testing.assert_array_equal(r.pattern.to_dense(), want)
    np.testing.assert_allclose(r.value.toarray()[0, 1], 1.0, rtol=1e-7)
    assert abs(r.value.toarray()[0, 0]) < 1e-6


# -- validation ---------------------------------------------------------------------------
def test_a_non_symmetric_pattern_is_refused_before_f_is_called():
    mask = np.eye(5, dtype=bool)
    mask[1, 3] = True
    called = []
    with pytest.raises(ValueError, match=r"must be symmetric.*\(1, 3\) without \(3, 1\).*"
                                         r"mask \| mask\.T"):
        nd.hessian(lambda v: called.append(1) or np.sum(v**2), np.ones(5), sparsity=mask)
    assert not called


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"sparsity": "auto"}, ValueError, "sparsity='auto' is not known"),
    ({"sparsity": np.eye(4)}, TypeError, "boolean mask"),
    ({"sparsity": np.eye(3, dtype=bool)}, ValueError, "shape"),
    ({"sparsity": np.eye(4, dtype=bool), "sparse_output": 1}, TypeError, "sparse_output"),
])
def test_sparse_hessian_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        nd.hessian(lambda v: np.sum(v**2), np.ones(4), **kwargs)


def test_a_vector_valued_f_is_refused_with_sparsity():
    with pytest.raises(ValueError, match="scalar-valued f"):
        nd.hessian(lambda v: v**2, np.ones(4), sparsity=np.eye(4, dtype=bool))


# -- nd.scipy -----------------------------------------------------------------------------
def test_scipy_hessian_with_a_pattern_drives_trust_constr():
    pytest.importorskip("scipy")  # scipy.sparse results (numpy alone: SparseJacobian)
    import scipy.sparse
    from scipy.optimize import minimize, rosen, rosen_der

    n = 60
    H = nd.scipy.Hessian(grad=rosen_der, sparsity=_path(n).to_dense(), method="central")
    res = minimize(rosen, np.full(n, 0.5), jac=H.grad, hess=H, method="trust-constr",
                   options={"gtol": 1e-10})
    assert res.success and np.max(np.abs(res.x - 1.0)) < 1e-6
    assert H.nfev == 6 * H.ncalls  # 2 points x 3 colours; g(x) from the solver's memo
    assert isinstance(H(res.x), scipy.sparse.csr_array)
    first = H.pattern
    H(np.full(n, 0.3))
    assert H.pattern is first


def test_scipy_hessian_from_values_detects_once():
    pytest.importorskip("scipy")  # scipy.sparse results (numpy alone: SparseJacobian)
    from scipy.optimize import minimize, rosen, rosen_der

    n = 30
    H = nd.scipy.Hessian(rosen, sparsity="detect", sparse_output=False)
    res = minimize(H.fun, np.full(n, 0.5), jac=rosen_der, hess=H, method="trust-constr")
    assert res.success and np.max(np.abs(res.x - 1.0)) < 1e-4
    np.testing.assert_array_equal(H.pattern.to_dense(), _path(n).to_dense())
    assert H(res.x).shape == (n, n)
    with pytest.raises(ValueError, match="sparsity='dense' is not known"):
        nd.scipy.Hessian(rosen, sparsity="dense")


def test_detection_from_f_refuses_float32_and_g_detects_it_exactly():
    n = 50
    x32 = _point(n).astype(np.float32)
    with pytest.raises(ValueError, match="needs float64.*grad=g"):
        nd.hessian(lambda v: rosen(np, v), x32, sparsity="detect")
    r = nd.hessian(None, x32, grad=lambda v: rosen_grad(np, v), sparsity="detect",
                   full_output=True)
    np.testing.assert_array_equal(r.pattern.to_dense(), _path(n).to_dense())
    assert r.value.dtype == np.float32


@pytest.mark.parametrize("kwargs", [{"step": nd.steps.adaptive()}, {"method": "complex_step"},
                                    {"method": "forward"}, {"step": 1e-4}])
def test_from_f_every_rule_and_method_equals_the_dense_hessian_on_the_pattern(kwargs):
    n = 16
    x = _point(n)
    pattern = _path(n)
    mask = pattern.to_dense()
    sparse = nd.hessian(lambda v: rosen(np, v), x, sparsity=pattern, full_output=True,
                        **kwargs)
    dense = nd.hessian(lambda v: rosen(np, v), x, full_output=True, **kwargs)
    np.testing.assert_array_equal(sparse.value.toarray()[mask], dense.value[mask])
    np.testing.assert_array_equal(sparse.status, dense.status[mask])
    assert sparse.nfev < dense.nfev


@pytest.mark.parametrize("step", [nd.steps.adaptive(), nd.steps.bound(), 1e-6])
def test_from_g_with_other_step_rules(step):
    pytest.importorskip("scipy")  # scipy.sparse results (numpy alone: SparseJacobian)
    n = 40
    x = _point(n)
    r = nd.hessian(None, x, grad=lambda v: rosen_grad(np, v), sparsity=_path(n), step=step,
                   full_output=True)
    assert _rel(r.value.toarray(), rosen_hess(x)) < 1e-6
    if isinstance(step, float):  # a fixed step's estimate is the rule's (84% on a Jacobian)
        return
    coo = r.value.tocoo()
    true = np.abs(coo.data - rosen_hess(x)[coo.row, coo.col])
    assert np.mean(true <= r.error) > 0.9


@pytest.mark.parametrize("wide", [4, 64])
def test_row_scales_of_the_star_plan_with_wide_rows(monkeypatch, wide):
    import numdiffx._core.plans.sparse_hessian as plans
    from numdiffx._core.plans.sparse_hessian import _row_tables

    monkeypatch.setattr(plans, "_WIDE", wide)
    n = 40
    x = _point(n)
    exact = arrow_hess(x) + rosen_hess(x)
    pattern = symmetric_pattern(*np.nonzero(exact), n)
    table, heavy, order = _row_tables(pattern)
    assert len(heavy) == (1 if wide == 4 else 0)  # the arrowhead's dense row
    values = np.abs(exact[pattern.rows, pattern.cols])
    padded = np.concatenate([values, [0.0]])
    parts = [padded[table].max(axis=1)] + [values[at].max(keepdims=True) for at in heavy]
    np.testing.assert_array_equal(np.concatenate(parts)[order], np.abs(exact).max(axis=1))
