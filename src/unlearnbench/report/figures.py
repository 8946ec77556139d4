"""Figures (matplotlib + seaborn), written as PNG and PDF.

Every figure takes the CSVs the table rules write (or results/metrics.csv for per-seed
views), so a figure always shows what its table says. Colours and markers are fixed
per method across figures.
"""

from __future__ import annotations

from typing import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.text  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from .. import io, methods, scores  # noqa: E402
from ..attacks import ulira  # noqa: E402
from ..attacks.ulira_files import read_scores  # noqa: E402
from .tables import kind_label, kind_order  # noqa: E402

MARKERS = "osD^vPp<>hH8d"  # '*' and 'X' are kept for the references
REFERENCE_STYLE = {"retrained": ("black", "*"), "original": ("0.55", "X")}


def method_style(names=None) -> dict[str, tuple]:
    """A fixed colour and marker per method, stable across figures and runs (the order is
    the registry's, not the data's)."""
    names = list(names) if names is not None else methods.names()
    palette = [c for i, c in enumerate(sns.color_palette("tab20", 20)) if i not in (14, 15)]  # no greys
    style = {m: (palette[i % len(palette)], MARKERS[i % len(MARKERS)]) for i, m in enumerate(names)}
    style.update(REFERENCE_STYLE)
    return style


def mark_legend(fig) -> None:
    """The legend line of methods beyond the paper's 18 under the figure, when any of its
    texts (tick labels, legends, titles) carries their mark."""
    texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    if any(methods.MARK in t for t in texts) and methods.LEGEND not in texts:
        fig.text(0.01, 0.0, methods.LEGEND, ha="left", va="top", fontsize=7)


def save(fig, png, pdf) -> None:
    mark_legend(fig)
    with io.atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
    with io.atomic_path(pdf) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight")
    plt.close(fig)


def _theme() -> None:
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)


def _settings(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys(zip(frame["dataset"], frame["model"])))


def _label(method: str, diverged: bool = False) -> str:
    return methods.label(method) + (" (diverged)" if diverged else "")


DIVERGED_Y = -0.12  # where the retention figure puts diverged models, below Indisc's range [0, 1]


def no_values(ax, what: str) -> None:
    """An empty panel that says why: `what` is NaN on every row it would draw (the
    tables print "–" for it; e.g. RetDev when the retrained model's FA is 0)."""
    ax.text(0.5, 0.5, f"nothing to draw: {what} is undefined (NaN)\non every row; the tables print \"–\"",
            ha="center", va="center", transform=ax.transAxes, fontsize=9, color="0.3")
    ax.set_xticks([])
    ax.set_yticks([])


def _flag(frame: pd.DataFrame) -> pd.Series:
    return frame["diverged"].fillna(False).astype(bool) if "diverged" in frame else pd.Series(False, frame.index)


def retention_points(table: pd.DataFrame) -> pd.DataFrame:
    """The retention figure's coordinates of each summary row: x = RetDev, y = Indisc,
    except that a model which diverged (non-finite outputs on some seed, no defined
    Indisc) sits at DIVERGED_Y, below every model that did not."""
    flag = _flag(table)
    return pd.DataFrame({"x": table["RetDev_mean"], "y": table["Indisc_mean"].where(~flag, DIVERGED_Y),
                         "diverged": flag}, index=table.index)


def _ordered(present) -> list[str]:
    """References first, then the registry's (paper) order, then unknown names."""
    present = list(dict.fromkeys(present))
    known = [m for m in ("retrained", "original") + tuple(methods.names()) if m in present]
    return known + sorted(set(present) - set(known))


# --- retention vs indiscernibility ------------------------------------------------------------

def _bar(row, score: str, ci: str):
    """[[below], [above]] error bar of `score`: to the clipped CI bounds when the table has
    them, else ± the `ci` column."""
    mean = row[f"{score}_mean"]
    if ci == "_ci" and f"{score}_ci_low" in row:
        below, above = mean - row[f"{score}_ci_low"], row[f"{score}_ci_high"] - mean
    else:
        below = above = row[f"{score}{ci}"]
    return [[np.nan_to_num(max(below, 0))], [np.nan_to_num(max(above, 0))]]


def retention_vs_indiscernibility(main_csv, png, pdf) -> None:
    """RetDev (x, lower better) against Indisc (y, higher better) per (dataset, model),
    one marker per method with 95 % t-CI error bars over seeds; the best corner is
    top-left. RetDev on a symmetric-log axis (linear below 0.01) so that the crowd of good
    methods near 0 separates."""
    table = pd.read_csv(main_csv)
    settings = _settings(table)
    names = _ordered(table["method"])
    style = method_style()
    _theme()
    ncols = min(len(settings), 3)
    nrows = -(-len(settings) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 4.0 * nrows), squeeze=False)
    ci = "_ci" if "RetDev_ci" in table.columns else "_std"
    points = retention_points(table)
    for ax, (dataset, model) in zip(axes.flat, settings):
        where = (table["dataset"] == dataset) & (table["model"] == model)
        block = table[where].set_index("method")
        xy = points[where].set_index(table.loc[where, "method"])
        for m in names:
            if m not in block.index:
                continue
            r, (x, y, diverged) = block.loc[m], xy.loc[m]
            colour, marker = style.get(m, ("0.3", "o"))
            ax.errorbar(x, y, xerr=_bar(r, "RetDev", ci), yerr=None if diverged else _bar(r, "Indisc", ci),
                        fmt="none", ecolor=colour, elinewidth=0.8,
                        capsize=2, alpha=0.55, zorder=2)
            ax.plot(x, y, marker, color=colour, markerfacecolor="none" if diverged else colour,
                    markersize=10 if m in REFERENCE_STYLE else 7, markeredgecolor=colour if diverged else "black",
                    markeredgewidth=1.2 if diverged else 0.4, zorder=3)
        if xy["diverged"].any():  # a band below the axis range: diverged models have no Indisc
            ax.axhline(DIVERGED_Y / 2, color="0.5", linestyle=":", linewidth=0.8)
            ax.text(0.01, DIVERGED_Y, "diverged (no Indisc)", transform=ax.get_yaxis_transform(), ha="left",
                    va="center", fontsize=7, color="0.3")
            ax.set_ylim(bottom=DIVERGED_Y * 1.5)
        ax.set_xscale("symlog", linthresh=0.01)
        # RetDev is infinite where the retrained model's FA (or RA, TA) is 0: no point, a note
        finite = np.isfinite(xy["x"].astype(float))
        if finite.any():
            ax.set_xlim(left=-0.001, right=max(ax.get_xlim()[1], xy["x"][finite].max() * 1.6))
        infinite = [_label(m) for m, x in xy["x"].items() if np.isinf(x)]
        if infinite:
            ax.text(0.98, 0.02, "RetDev infinite, not drawn: " + ", ".join(infinite), transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=7, color="0.3")
        ax.set_title(f"{dataset} / {model}")
        ax.set_xlabel("RetDev (lower is better)")
        ax.set_ylabel("Indisc (higher is better)")
    for ax in axes.flat[len(settings):]:
        ax.set_visible(False)
    handles = [Line2D([], [], linestyle="", marker=style.get(m, ("0.3", "o"))[1],
                      color=style.get(m, ("0.3", "o"))[0], markeredgecolor="black", markeredgewidth=0.4,
                      markersize=8, label=_label(m)) for m in names]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, title="method")
    bars = "95 % CI over seeds" if ci == "_ci" else "± std over seeds"
    fig.suptitle(f"Retention deviation vs indiscernibility (best: top left; bars: {bars})")
    fig.tight_layout()
    save(fig, png, pdf)


# --- run-time efficiency ----------------------------------------------------------------------

def rte(rte_csv, png, pdf) -> None:
    """RTE per method (rows, fastest on top) on a log axis, one marker per setting with its
    95 % t-CI over seeds; the dashed line is retraining (RTE 1)."""
    long = pd.read_csv(rte_csv)
    long = long[long["method"] != "retrained"]
    settings = _settings(long)
    geo = long.groupby("method")["RTE_mean"].apply(lambda x: np.exp(np.log(x).mean())).sort_values()
    order = list(geo.index)  # slowest first = bottom
    diverged = set(long.loc[_flag(long), "method"])
    _theme()
    fig, ax = plt.subplots(figsize=(7.5, 0.26 * len(order) * max(1, len(settings) / 3) ** 0.5 + 1.4))
    palette = sns.color_palette("colorblind", max(len(settings), 1))
    markers = "oDs^vP"
    offsets = np.linspace(-0.25, 0.25, len(settings)) if len(settings) > 1 else [0.0]
    y_of = {m: i for i, m in enumerate(order)}
    for k, (dataset, model) in enumerate(settings):
        block = long[(long["dataset"] == dataset) & (long["model"] == model)]
        y = block["method"].map(y_of) + offsets[k]
        low = (block["RTE_mean"] - block["RTE_ci_low"]).clip(lower=0).fillna(0)
        high = (block["RTE_ci_high"] - block["RTE_mean"]).fillna(0)
        ax.errorbar(block["RTE_mean"], y, xerr=[low, high], fmt=markers[k % len(markers)], color=palette[k],
                    markersize=5.5, capsize=1.5, elinewidth=0.8, label=f"{dataset} / {model}",
                    markeredgecolor="black", markeredgewidth=0.3)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.text(1.0, 0.99, "retraining \n(RTE = 1) ", transform=ax.get_xaxis_transform(), ha="right", va="top",
            fontsize=8)
    ax.set_xscale("log")
    lo = np.nanmin(long["RTE_ci_low"].where(long["RTE_ci_low"] > 0, long["RTE_mean"]))
    ax.set_xlim(min(0.5, lo / 1.5), np.nanmax(long["RTE_ci_high"].fillna(long["RTE_mean"])) * 1.5)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    ax.set_yticks(range(len(order)), [_label(m, m in diverged) for m in order])
    ax.set_ylim(-0.6, len(order) - 0.4)
    ax.set_xlabel("RTE = retraining seconds / unlearning seconds (log scale, higher is faster)")
    ax.set_ylabel("method")
    ax.grid(axis="y", visible=False)
    ax.legend(title="setting", loc="best", frameon=True, fontsize=8)
    ax.set_title("Run-time efficiency per method (bars: 95 % CI over seeds)")
    fig.tight_layout()
    save(fig, png, pdf)


# --- rank heat map ----------------------------------------------------------------------------

def rank_heatmap(rankings_csv, mean_ranks_csv, png, pdf) -> None:
    """Methods (rows, best mean rank on top) x settings (columns), cell = rank by RetDev
    with Indisc as tie-break; right of the white line: mean rank per architecture and
    overall."""
    ranks = pd.read_csv(rankings_csv)
    means = pd.read_csv(mean_ranks_csv)
    order = list(means["method"])
    settings = _settings(ranks)
    models_ = list(dict.fromkeys(ranks["model"]))
    grid = pd.DataFrame(index=order)
    marks = pd.DataFrame(index=order)  # " div" where the method diverged (ranked below the others)
    for dataset, model in settings:
        block = ranks[(ranks["dataset"] == dataset) & (ranks["model"] == model)].set_index("method")
        grid[f"{dataset}\n{model}"] = block["rank"].reindex(order)
        marks[f"{dataset}\n{model}"] = _flag(block).reindex(order).fillna(False).map({True: " div", False: ""})
    n_settings = grid.shape[1]
    if len(models_) > 1:
        for model in models_:
            grid[f"mean\n{model}"] = means.set_index("method")[f"mean_rank_{model}"].reindex(order)
    grid["mean\nall"] = means.set_index("method")["mean_rank"].reindex(order)
    annot = grid.map(lambda x: "" if pd.isna(x) else (f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"))
    annot = annot + marks.reindex(columns=grid.columns).fillna("")
    _theme()
    fig, ax = plt.subplots(figsize=(1.0 * grid.shape[1] + 2.6, 0.33 * len(order) + 1.8))
    sns.heatmap(grid, annot=annot, fmt="", cmap="viridis_r", vmin=1, vmax=max(len(order), 2), linewidths=0.5,
                linecolor="white", cbar_kws={"label": "rank (1 = best)", "shrink": 0.8}, ax=ax,
                annot_kws={"fontsize": 8})
    ax.axvline(n_settings, color="white", linewidth=4)
    ax.set_yticks(np.arange(len(order)) + 0.5, [_label(m) for m in order], rotation=0)
    ax.set_xticks(np.arange(grid.shape[1]) + 0.5, list(grid.columns), rotation=0, fontsize=8)
    ax.set_xlabel("setting (dataset / model)  |  mean rank")
    ax.set_ylabel("method (by overall mean rank)")
    ax.set_title("Rank by RetDev, Indisc breaking ties" + ("; div = diverged, ranked last" if
                 marks.eq(" div").any().any() else ""))
    fig.tight_layout()
    save(fig, png, pdf)


# --- seed-to-seed spread ----------------------------------------------------------------------

def seed_spread(metrics_csv, png, pdf) -> None:
    """Per-seed RetDev per method (one dot per seed, box over seeds) in each setting,
    methods by median RetDev; the dashed line is the original model (no unlearning). The
    right-hand labels give the range of ranks the method gets seed by seed: a single seed
    can rank a method anywhere in that range."""
    frame = scores.read_metrics(metrics_csv)
    per = scores.per_seed(frame)
    unlearned = per[~per["method"].isin(scores.REFERENCES)].copy()
    unlearned["seed_rank"] = scores.rank(unlearned, scores.SETTING + ["seed"], by="RetDev", tie="Indisc")
    settings = _settings(unlearned)
    style = method_style()
    _theme()
    ncols = min(len(settings), 3)
    nrows = -(-len(settings) // ncols)
    n_methods = unlearned["method"].nunique()
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, (0.3 * n_methods + 1.4) * nrows), squeeze=False)
    floor = 1e-3
    for ax, (dataset, model) in zip(axes.flat, settings):
        block = unlearned[(unlearned["dataset"] == dataset) & (unlearned["model"] == model)].copy()
        n_seeds = block["seed"].nunique()
        ax.set_title(f"{dataset} / {model} ({n_seeds} seed{'s' if n_seeds != 1 else ''})", pad=14)
        finite = np.isfinite(block["RetDev"])
        if not finite.any():
            no_values(ax, "per-seed RetDev")
            continue
        block["RetDev_plot"] = block["RetDev"].where(finite).clip(lower=floor)
        # diverged methods (on any seed) below the others, each part by median RetDev
        g = block.groupby("method")
        key = pd.DataFrame({"d": g["diverged"].any(), "r": g["RetDev"].median()})
        order = list(key.sort_values(["d", "r"], kind="stable").index)
        div = set(key.index[key["d"]])
        palette = {m: style.get(m, ("0.3", "o"))[0] for m in order}
        sns.boxplot(data=block, x="RetDev_plot", y="method", order=order, hue="method", palette=palette,
                    whis=(0, 100), width=0.6, fliersize=0, boxprops={"alpha": 0.35}, linewidth=0.8, ax=ax,
                    legend=False, log_scale=True)
        sns.stripplot(data=block, x="RetDev_plot", y="method", order=order, hue="method", palette=palette,
                      size=4, jitter=0.15, edgecolor="black", linewidth=0.4, ax=ax, legend=False)
        original = per[(per["dataset"] == dataset) & (per["model"] == model) & (per["method"] == "original")]
        if len(original) and np.isfinite(original["RetDev"].mean()):
            ax.axvline(max(original["RetDev"].mean(), floor), color="0.4", linestyle="--", linewidth=1)
            ax.text(max(original["RetDev"].mean(), floor), -0.8, "original", ha="center", va="bottom",
                    fontsize=8, color="0.3")
        span = block.groupby("method")["seed_rank"].agg(["min", "max"])
        for i, m in enumerate(order):
            lo, hi = span.loc[m]
            text = f"{lo:.0f}" if lo == hi else f"{lo:.0f}–{hi:.0f}"
            ax.text(1.01, i, text, transform=ax.get_yaxis_transform(), va="center", ha="left", fontsize=8)
        ax.text(1.01, -0.8, "seed\nranks", transform=ax.get_yaxis_transform(), va="bottom", ha="left",
                fontsize=8, fontweight="bold")
        ax.set_yticks(range(len(order)), [_label(m, m in div) for m in order])
        ax.set_ylim(len(order) - 0.5, -1.0)
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("per-seed RetDev (log scale, lower is better)")
        ax.set_ylabel("")
    for ax in axes.flat[len(settings):]:
        ax.set_visible(False)
    fig.suptitle("Seed-to-seed spread of RetDev: one dot per seed; right: range of per-seed ranks")
    fig.tight_layout()
    save(fig, png, pdf)


# --- critical difference diagram ---------------------------------------------------------------

def critical_difference(cd_csv, pvalues_csv, png, pdf, alpha: float = 0.05) -> None:
    """Critical-difference diagram: mean rank across settings on the axis (1 = best,
    left), a bar joins methods that Nemenyi's test cannot tell apart at `alpha`."""
    import scikit_posthocs as sp  # noqa: PLC0415

    table = pd.read_csv(cd_csv)
    pvalues = pd.read_csv(pvalues_csv, index_col=0)
    diverged = table["diverged_blocks"] if "diverged_blocks" in table else pd.Series(0, index=table.index)
    labels = {m: _label(m) + (f" (diverged in {d})" if d else "") for m, d in zip(table["method"], diverged)}
    ranks = pd.Series(table["mean_rank"].to_numpy(), index=[labels[m] for m in table["method"]])
    _theme()
    sns.set_style("white")
    fig, ax = plt.subplots(figsize=(9, 0.22 * len(ranks) + 2.2))
    n_blocks = int(table["n_blocks"].iloc[0]) if len(table) else 0
    cd = float(table["cd"].iloc[0]) if len(table) else float("nan")
    p = float(table["friedman_p"].iloc[0]) if len(table) else float("nan")
    if pvalues.notna().all().all() and len(ranks) >= 3:
        sig = pvalues.rename(index=labels, columns=labels)
        sp.critical_difference_diagram(ranks, sig, ax=ax, alpha=alpha,
                                       label_fmt_left="{label} ({rank:.1f})", label_fmt_right="({rank:.1f}) {label}",
                                       label_props={"fontsize": 9},
                                       elbow_props={"linewidth": 0.8, "color": "0.2"},
                                       crossbar_props={"linewidth": 2.5, "color": "tab:red", "alpha": 0.8})
        ptext = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
        k = len(ranks)
        title = (f"Mean rank across {n_blocks} settings (1 = best). Friedman {ptext}; Nemenyi CD = {cd:.2f} "
                 f"at α = {alpha}\nmethods joined by a bar are not significantly different"
                 + (f"; not testable at this size (CD > largest possible difference {k - 1})" if cd > k - 1 else ""))
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, f"not testable: {n_blocks} setting(s), {len(ranks)} method(s)\n"
                "(Friedman + Nemenyi need at least 2 settings and 3 methods)", ha="center", va="center",
                transform=ax.transAxes)
        title = "Critical-difference diagram"
    ax.set_title(title, fontsize=10, pad=12)
    fig.tight_layout()
    save(fig, png, pdf)


def ulira_scores(score_paths: Mapping[str, str], png, pdf, title: str = "", max_points: int = 20000) -> None:
    """ROC curves on log-log axes (left) and the distribution of the membership
    probability P of forgotten and never-seen examples (right), one entry per kind."""
    kinds = kind_order(list(score_paths))
    style = method_style()  # the registry's colours, as in every other figure; references fixed
    style.update({k: v for k, v in method_style(kinds).items() if k not in style})
    sns.set_theme(style="whitegrid", context="paper")
    fig, (ax_roc, ax_p) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1, 1.5]})
    rng = np.random.default_rng(0)
    frames, floor = [], 1.0
    for kind in kinds:
        s = read_scores(score_paths[kind])
        sel = s["label"] >= 0
        label, llr, p = s["label"][sel].astype(int), s["llr"][sel].astype(float), s["p"][sel].astype(float)
        if (label == 1).any() and (label == 0).any():
            fpr, tpr = ulira.roc(label, llr)
            auc = ulira.attack_metrics(label, llr)["auc"]
            floor = min(floor, 1.0 / max((label == 0).sum(), 1))
            ok = (fpr > 0) & (tpr > 0)
            colour, _ = style[kind]
            ax_roc.plot(fpr[ok], tpr[ok], color=colour, lw=1.6 if kind in scores.REFERENCES else 1.2,
                        ls="--" if kind in scores.REFERENCES else "-", label=f"{kind_label(kind)} (AUC {auc:.3f})")
        for truth, name in ((1, "forgotten"), (0, "never seen")):
            values = p[label == truth]
            if len(values) > max_points:
                values = rng.choice(values, max_points, replace=False)
            frames.append(pd.DataFrame({"kind": kind_label(kind).replace(" (", "\n("), "truth": name, "P": values}))
    ax_roc.plot([floor, 1], [floor, 1], color="grey", lw=0.8, ls=":", label="chance")
    ax_roc.set_xscale("log")
    ax_roc.set_yscale("log")
    ax_roc.set_xlim(floor, 1)
    ax_roc.set_ylim(floor, 1.02)
    ax_roc.set_xlabel("false positive rate (never seen called forgotten)")
    ax_roc.set_ylabel("true positive rate (forgotten detected)")
    ax_roc.set_title("ROC of the U-LiRA attack (log-log)")
    ax_roc.legend(loc="lower right", fontsize=7, frameon=True)
    frame = pd.concat(frames, ignore_index=True)
    sns.violinplot(data=frame, x="kind", y="P", hue="truth", split=True, cut=0, inner="quartile",
                   density_norm="width", palette={"forgotten": "#d95f02", "never seen": "#7570b3"}, ax=ax_p)
    ax_p.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax_p.set_ylim(-0.02, 1.02)
    ax_p.set_xlabel("")
    ax_p.set_ylabel("membership probability P (forgotten)")
    ax_p.set_title("Per-example P on held-out target models")
    ax_p.legend(title="example was", loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save(fig, png, pdf)
