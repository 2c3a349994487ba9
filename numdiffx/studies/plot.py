"""PNG figures for the studies (matplotlib imported only when called, Agg backend).

Both figures are drawn for a page about 1200 px wide (the docs show them at that width):
10-11 pt text at 100 dpi, every panel with at least three labelled decades.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import Any

from ._report import REPORT_SHORT
from .delta import DeltaRecord

__all__ = ["plot_delta", "plot_timing"]

_FLOOR = 1e-17  # errors of exactly zero are drawn here on a log axis
_COLOURS = {"forward": "tab:blue", "backward": "tab:orange", "central": "tab:green",
            "complex_step": "tab:purple"}
_NAMES = {"forward": "forward ('plus', the report's)", "backward": "backward ('minus')",
          "central": "central", "complex_step": "complex step"}
# panel columns: the report's one-sided stencils together, then like-for-like families
_FAMILIES = (("one-sided", ("forward", "backward")), ("central", ("central",)),
             ("complex step", ("complex_step",)))


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend, or an ImportError naming the extra."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("the study figures need matplotlib: pip install 'numdiffx[plot]'."
                          ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finite(v: float) -> bool:
    return v == v and not math.isinf(v)


def _decades(ax: Any, values: Sequence[float], minimum: int = 3) -> None:
    """y limits on whole decades spanning ``values``, at least ``minimum`` decades, with
    a labelled tick on every decade (a narrow range otherwise gets one or two labels)."""
    from matplotlib.ticker import LogLocator, NullFormatter

    vals = [v for v in values if _finite(v) and v > 0]
    if not vals:
        return
    lo, hi = math.floor(math.log10(min(vals))), math.ceil(math.log10(max(vals)))
    while hi - lo < minimum:
        hi, lo = (hi + 1, lo) if (hi - lo) % 2 == 0 else (hi, lo - 1)
    ax.set_ylim(10.0 ** lo, 10.0 ** hi)
    step = max(1, math.ceil((hi - lo) / 9))  # at most ~10 labels
    ax.yaxis.set_major_locator(LogLocator(base=10.0 ** step, numticks=20))
    ax.yaxis.set_minor_locator(LogLocator(base=10.0, subs=(1.0,), numticks=40)
                               if step > 1 else LogLocator(base=10.0, subs="auto"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _panel_delta(ax: Any, group: Sequence[DeltaRecord], methods: Sequence[str],
                 error: str) -> list[float]:
    """One panel: fixed-step curves of ``methods``, numdiffx's own steps of the first one as
    horizontal reference lines, its best fixed delta circled. Returns the plotted values."""
    main = methods[0]
    shown: list[float] = []
    for method in methods:
        rows = sorted((r for r in group if r.method == method and isinstance(r.delta, float)),
                      key=lambda r: float(r.delta))
        ok = [r for r in rows if _finite(getattr(r, error))]
        xs = [float(r.delta) for r in ok]
        ys = [max(getattr(r, error), _FLOOR) for r in ok]
        colour = _COLOURS.get(method, "black")
        ax.loglog(xs, ys, "-o" if method == main else "--s", ms=4, lw=1.8, color=colour,
                  label=f"_{method} max")
        shown += ys
        if method == main and error == "block_max_error":
            means = [max(r.mean_error, _FLOOR) for r in ok]
            ax.loglog(xs, means, ":", lw=1.5, color=colour, label=f"_{method} mean")
            shown += means
    fixed = [r for r in group if r.method == main and isinstance(r.delta, float)]
    ok = [r for r in fixed if _finite(getattr(r, error))]
    if ok:
        best = min(ok, key=lambda r: getattr(r, error))
        y = max(getattr(best, error), _FLOOR)
        ax.loglog([float(best.delta)], [y], "o", ms=15, mfc="none", mec="black", mew=1.6,
                  label=f"best fixed δ = {float(best.delta):.0e}: {y:.1e}")
    styles = {"auto": ("--", "black"), "adaptive": ("-.", "tab:red")}
    for rule, (ls, colour) in styles.items():
        rec = next((r for r in group if r.method == main and r.delta == rule), None)
        if rec is None:
            continue
        y = getattr(rec, error)
        step = (f"h ≈ {rec.step_median:.0e}" if _finite(rec.step_median) else "no step")
        if _finite(y):
            ax.axhline(max(y, _FLOOR), ls=ls, lw=1.6, color=colour,
                       label=f"numdiffx {rule}: {y:.1e} ({step})")
            shown.append(max(y, _FLOOR))
    kinked = [float(r.delta) for r in fixed if r.kinks_crossed > 0]
    if kinked:
        ax.axvspan(min(kinked) / 3, max(kinked) * 3, color="0.85", zorder=0)
    lost = [float(r.delta) for r in fixed if not _finite(getattr(r, error))]
    if lost:
        ax.axvspan(min(lost) / 3, max(lost) * 3, color="mistyrose", zorder=0)
    return shown


def _shared_legend(fig: Any, plt: Any, methods: Sequence[str], error: str) -> None:
    """The line styles every panel shares, once under the title."""
    from matplotlib.patches import Patch

    handles, labels = [], []
    blank = plt.Line2D([], [], ls="", marker="")
    for method in methods:  # one legend column per method: max error over mean error
        colour = _COLOURS.get(method, "black")
        main = method != "backward"
        handles.append(plt.Line2D([], [], ls="-" if main else "--", marker="o" if main else "s",
                                  ms=4, color=colour))
        labels.append(f"{_NAMES.get(method, method)}: max error")
        if main and error == "block_max_error":
            handles.append(plt.Line2D([], [], ls=":", lw=1.5, color=colour))
            labels.append("mean error over all entries")
        else:
            handles.append(blank)
            labels.append("")
    handles += [Patch(color="0.85"), Patch(color="mistyrose")]
    labels += ["steps cross ReLU kinks", "x + δ == x: step lost (NaN)"]
    fig.legend(handles, labels, loc="upper center", ncol=len(methods) + 1, fontsize=10,
               bbox_to_anchor=(0.5, 1 - 0.58 / fig.get_figheight()), frameon=False)


def plot_delta(records: Sequence[DeltaRecord], path: str, *, error: str = "block_max_error"
               ) -> Any:
    """Error vs fixed step, one row per network x dtype, one column per stencil family.

    Columns compare like with like: the one-sided stencils (forward = the report's
    JacrevFinite 'plus', backward = 'minus'), central, complex step. In each panel the
    fixed-step curve of the family's first method is drawn with its mean error (the
    report's Figure 1 draws mean and max), numdiffx's ``auto`` and ``adaptive`` steps as
    horizontal lines labelled with their error and the median step they used, and the
    best fixed delta circled. Grey: steps that cross ReLU kinks; pink: steps lost to
    rounding (x + delta == x). Returns the figure after saving it to ``path``.
    """
    plt = _pyplot()
    groups: dict[tuple[str, str], list[DeltaRecord]] = {}
    for r in records:
        groups.setdefault((r.activation, r.dtype), []).append(r)
    keys = sorted(groups, key=lambda k: (k[0], k[1] != "float64"))
    present = {r.method for r in records}
    families = [(name, [m for m in ms if m in present]) for name, ms in _FAMILIES
                if any(m in present for m in ms)]
    nrows, ncols = len(keys), len(families)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.2 * ncols, 3.9 * nrows + 1.3),
                             squeeze=False)
    for row, key in enumerate(keys):
        group = groups[key]
        for col, (family, methods) in enumerate(families):
            ax = axes[row][col]
            used = [m for m in methods if any(r.method == m for r in group)]
            if not used:
                ax.text(0.5, 0.5, f"{family}: not valid for {key[0]}\n(f is not analytic)",
                        ha="center", va="center", transform=ax.transAxes, fontsize=11)
                ax.set_axis_off()
                continue
            shown = _panel_delta(ax, group, used, error)
            _decades(ax, shown)
            title = f"{key[0]} network, {key[1]}: {family}"
            if key == ("relu", "float64") and used[0] == "forward":
                title += "  (≙ the report's Fig. 1)"
            ax.set_title(title, fontsize=11.5)
            ax.set_xlabel("fixed step δ", fontsize=10.5)
            ax.set_ylabel("error |J_fd − J_exact|" if error == "block_max_error"
                          else error.replace("_", " "), fontsize=10.5)
            ax.tick_params(labelsize=10)
            ax.grid(True, which="major", alpha=0.35)
            ax.legend(fontsize=9, loc="best", framealpha=0.9)
    # panels first, then the header in the space kept free above them
    fig.tight_layout(rect=(0, 0, 1, 1 - 1.05 / fig.get_figheight()))
    _shared_legend(fig, plt, [m for _, ms in families for m in ms], error)
    first = records[0] if records else None
    where = f"{first.backend}, x of shape ({first.rows}, 5)" if first else ""
    fig.suptitle("Jacobian error vs finite-difference step on the report's 5-128-128-128-5 "
                 f"MLP ({where})\nreproduces Fig. 1 of {REPORT_SHORT} (top left) and extends "
                 "it: backward, central, float32, tanh, numdiffx's own steps", fontsize=12.5,
                 y=1 - 0.08 / fig.get_figheight(), va="top")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return fig


# timing methods by family: (colour, line style, legend label); backends share a family
_TIMING_STYLE = {
    "jacrev": ("tab:blue", "-", "jacrev (torch.func / jax)"),
    "jacfwd": ("tab:cyan", "-", "jacfwd (torch.func / jax)"),
    "grad": ("0.55", ":", "autograd.grad / jax.grad: one VJP, not a Jacobian"),
    "jit jacfwd": ("tab:cyan", "--", "jax.jit(jax.jacfwd)"),
    "jacrevfinite": ("black", "-", "JacrevFinite algorithm (the report's forward diff.)"),
    "numdiffx forward": ("tab:red", "-", "numdiffx forward (batched, like JacrevFinite)"),
    "numdiffx central": ("tab:green", "-", "numdiffx central (batched)"),
    "numdiffx default": ("tab:purple", "-", "numdiffx default (central, evaluation='auto')"),
    "jit numdiffx forward": ("tab:red", "--", "jax.jit(numdiffx forward)"),
}


def _family(method: str) -> str:
    if method.startswith("jax.jit("):
        return "jit numdiffx forward" if "numdiffx" in method else "jit jacfwd"
    for key in ("jacrevfinite", "numdiffx forward", "numdiffx central", "numdiffx default"):
        if method == key:
            return key
    return method.rsplit(".", 1)[-1]  # torch.func.jacrev -> jacrev, jax.grad -> grad


def _seconds(value: float, _: object = None) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= scale * 0.999:
            return f"{value / scale:g} {unit}"
    return f"{value * 1e9:g} ns"


def _timing_lines(ax: Any, group: Sequence[Any], methods: Sequence[str],
                  sizes: Sequence[int]) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    for method in methods:
        fam = _family(method)
        colour, ls, _ = _TIMING_STYLE.get(fam, ("tab:brown", "-", method))
        pts = sorted((r for r in group if r.method == method), key=lambda r: r.n)
        ax.loglog([r.n for r in pts], [r.min_s for r in pts], ls=ls, marker="o", ms=4,
                  lw=2.2 if fam in ("jacrevfinite", "numdiffx forward") else 1.5, color=colour)
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(sizes[0] / 1.6, sizes[-1] * 1.6)


def _timing_bars(ax: Any, group: Sequence[Any], methods: Sequence[str]) -> None:
    times = [next(r.min_s for r in group if r.method == m) for m in methods]
    colours = [_TIMING_STYLE.get(_family(m), ("tab:brown",))[0] for m in methods]
    hatches = ["//" if m.startswith("jax.jit(") else "" for m in methods]
    bars = ax.bar(range(len(methods)), times, color=colours, log=True)
    for bar, hatch in zip(bars, hatches):
        bar.set_hatch(hatch)
    ax.set_xticks(range(len(methods)))
    ax.set_xticklabels(methods, rotation=35, ha="right", fontsize=9)


def plot_timing(records: Sequence[Any], path: str, *,
                machine: dict[str, object] | None = None) -> Any:
    """Minimum time vs size, one row per case, one column per backend (log-log).

    Methods keep one colour across panels (jacrev blue, the report's JacrevFinite black,
    numdiffx forward red, ...); dashed lines are jax.jit-compiled. ``machine`` (default:
    this one, :func:`numdiffx.studies.machine_info`) names the CPU in the title. Returns
    the figure after saving it to ``path``.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator

    from ._machine import machine_line

    plt = _pyplot()
    ok = [r for r in records if r.status == "ok"]
    cases = list(dict.fromkeys(r.case for r in ok))
    backends = list(dict.fromkeys(r.backend for r in ok))
    nrows, ncols = max(len(cases), 1), max(len(backends), 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(4.7 * ncols, 7.0),
                                                    3.3 * nrows + 2.4), squeeze=False)
    families: list[str] = []
    for row, case in enumerate(cases):
        for col, backend in enumerate(backends):
            ax = axes[row][col]
            group = [r for r in ok if r.case == case and r.backend == backend]
            sizes = sorted({r.n for r in group})
            methods = list(dict.fromkeys(r.method for r in group))
            for method in methods:
                fam = _family(method)
                if fam not in families:
                    families.append(fam)
            if len(sizes) == 1:  # one size: bars, one per method, not lone points
                _timing_bars(ax, group, methods)
            else:
                _timing_lines(ax, group, methods, sizes)
            _decades(ax, [r.min_s for r in group], minimum=2)
            ax.yaxis.set_major_locator(LogLocator(base=10.0, numticks=12))
            ax.yaxis.set_major_formatter(FuncFormatter(_seconds))
            ax.tick_params(labelsize=10)
            ax.grid(True, which="major", alpha=0.35)
            what = ("5-128-128-128-5 tanh MLP" if case == "mlp"
                    else {"two": "two(x) = 2x", "add": "f(x, y) = x + y, d/dx",
                          "mul": "g(x, y) = x · y, d/dx"}.get(case, case))
            ax.set_title(f"{what} on {backend}", fontsize=11.5)
            size_label = "rows of x (rows × 5 inputs)" if case == "mlp" else "n"
            ax.set_xlabel(size_label if len(sizes) > 1 else f"{size_label} = {sizes[0]}",
                          fontsize=10.5)
            if col == 0:
                ax.set_ylabel("wall time (min of runs)", fontsize=10.5)
    handles = [plt.Line2D([], [], color=_TIMING_STYLE[f][0], ls=_TIMING_STYLE[f][1],
                          marker="o", ms=4, lw=2) for f in families if f in _TIMING_STYLE]
    labels = [_TIMING_STYLE[f][2] for f in families if f in _TIMING_STYLE]
    first = ok[0] if ok else None
    dtype = first.dtype if first else "?"
    devices = ", ".join(sorted({r.device for r in ok})) or "?"
    repeats = first.repeats if first else 0
    runs = "run" if repeats == 1 else "runs"
    title_size = 12 if ncols > 1 else 10
    chars = int(fig.get_figwidth() * 72 / (0.6 * title_size))  # characters per line
    title = "\n".join(textwrap.fill(line, chars) for line in (
        f"Jacobian wall time, {dtype} on {devices.upper()}, minimum of {repeats} {runs} "
        "after a warm-up", machine_line(machine),
        f"the timing cases of {REPORT_SHORT} (§5.2, each through a Python wrapper) and its "
        "MLP"))
    legend_cols = min(ncols, 3)
    legend_rows = math.ceil(len(labels) / legend_cols)
    height = fig.get_figheight()
    legend_top = 0.08 + (title.count("\n") + 1) * 1.45 * title_size / 72 + 0.08
    fig.tight_layout(rect=(0, 0, 1, 1 - (legend_top + 0.2 * legend_rows + 0.25) / height))
    fig.legend(handles, labels, loc="upper center", ncol=legend_cols, fontsize=9.5,
               frameon=False, bbox_to_anchor=(0.5, 1 - legend_top / height))
    fig.suptitle(title, fontsize=title_size, y=1 - 0.08 / height, va="top")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return fig
