"""PNG figures for the studies (matplotlib imported only when called, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .delta import DeltaRecord

__all__ = ["plot_delta", "plot_timing"]


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


def plot_delta(records: Sequence[DeltaRecord], path: str, *, error: str = "block_max_error"
               ) -> Any:
    """Log-log error vs delta, one panel per activation x dtype, one line per method.

    numdiffx's ``auto`` (and ``adaptive``) choices are drawn as points at the step they
    resolve to on the x axis' right edge marker column; the best fixed delta per method
    is circled. Returns the matplotlib figure after saving it to ``path``.
    """
    plt = _pyplot()
    groups: dict[tuple[str, str], list[DeltaRecord]] = {}
    for r in records:
        groups.setdefault((r.activation, r.dtype), []).append(r)
    keys = sorted(groups, key=lambda k: (k[0], k[1] != "float64"))
    ncols = 2 if len(keys) > 1 else 1
    nrows = (len(keys) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.2 * ncols, 4.4 * nrows), squeeze=False)
    colors = {"forward": "tab:blue", "backward": "tab:orange", "central": "tab:green",
              "complex_step": "tab:purple"}
    markers = {"auto": "*", "adaptive": "D"}
    for ax, key in zip(axes.flat, keys):
        group = groups[key]
        fixed_deltas = [r.delta for r in group if isinstance(r.delta, float)]
        x_choice = min(fixed_deltas) / 10 if fixed_deltas else 1e-11
        for method in dict.fromkeys(r.method for r in group):
            rows = [r for r in group if r.method == method and isinstance(r.delta, float)
                    and getattr(r, error) == getattr(r, error)]
            color = colors.get(method, "black")
            xs = [float(r.delta) for r in rows]
            ys = [max(getattr(r, error), 1e-17) for r in rows]
            ax.loglog(xs, ys, "-o", ms=3, color=color, label=method)
            if rows:
                best = min(rows, key=lambda r: getattr(r, error))
                ax.loglog([best.delta], [max(getattr(best, error), 1e-17)], "o", ms=11,
                          mfc="none", mec=color, mew=1.5)
            for r in group:
                if r.method == method and isinstance(r.delta, str):
                    ax.loglog([x_choice], [max(getattr(r, error), 1e-17)],
                              markers.get(r.delta, "s"), ms=10, color=color)
        kinked = [float(r.delta) for r in group if isinstance(r.delta, float)
                  and r.kinks_crossed > 0]
        if kinked:
            ax.axvspan(min(kinked) / 2, max(kinked) * 2, color="0.88", zorder=0)
            ax.text(0.98, 0.03, "grey: steps cross ReLU kinks", transform=ax.transAxes,
                    ha="right", fontsize=8)
        ax.axvline(x_choice * 3, color="0.6", lw=0.8, ls=":")
        ax.set_title(f"{key[0]} network, {key[1]}")
        ax.set_xlabel("delta (fixed step); left of dotted line: numdiffx's own choice")
        ax.set_ylabel(error.replace("_", " ") + " of the Jacobian")
        ax.grid(True, which="major", alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    handles += [plt.Line2D([], [], ls="", marker="*", ms=10, color="k"),
                plt.Line2D([], [], ls="", marker="D", ms=7, color="k"),
                plt.Line2D([], [], ls="", marker="o", ms=11, mfc="none", mec="k")]
    labels += ["numdiffx auto", "numdiffx adaptive", "best fixed delta"]
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 7), fontsize=9)
    fig.suptitle("Jacobian error vs step, 5-128-128-128-5 MLP (U shape: truncation error at "
                 "large delta, round-off at small delta)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig


def plot_timing(records: Sequence[Any], path: str) -> Any:
    """Log-log median time vs size, one panel per case x backend, one line per method."""
    plt = _pyplot()
    groups: dict[tuple[str, str], list[Any]] = {}
    for r in records:
        if r.status == "ok":
            groups.setdefault((r.case, r.backend), []).append(r)
    keys = list(groups)
    ncols = min(3, max(len(keys), 1))
    nrows = max((len(keys) + ncols - 1) // ncols, 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.8 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for method in dict.fromkeys(r.method for r in groups[key]):
            rows = sorted((r for r in groups[key] if r.method == method), key=lambda r: r.n)
            ax.loglog([r.n for r in rows], [r.median_s for r in rows], "-o", ms=4,
                      label=method)
        ax.set_title(f"{key[0]} on {key[1]}")
        ax.set_xlabel("rows" if key[0] == "mlp" else "n")
        ax.set_ylabel("median seconds")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return fig
