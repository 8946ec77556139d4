"""Figures (matplotlib + seaborn), written as PNG and PDF."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .. import io, methods  # noqa: E402

MARKERS = "osD^vP*Xp<>hH8d"


def method_style(names) -> dict[str, tuple]:
    """A fixed colour and marker per method, stable across figures."""
    palette = sns.color_palette("tab20", 20)
    return {m: (palette[i % 20], MARKERS[i % len(MARKERS)]) for i, m in enumerate(names)}


def save(fig, png, pdf) -> None:
    with io.atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
    with io.atomic_path(pdf) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight")
    plt.close(fig)


def retention_vs_indiscernibility(main_csv, png, pdf) -> None:
    """RetDev (x, lower better) against Indisc (y, higher better) per (dataset, model),
    one marker per method with ± std error bars over seeds."""
    table = pd.read_csv(main_csv)
    settings = list(table.groupby(["dataset", "model"], sort=False).groups)
    names = ["retrained", "original"] + [m for m in methods.names() if m in set(table["method"])]
    style = method_style(names)
    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(1, len(settings), figsize=(4.2 * len(settings), 3.8), squeeze=False, sharey=True)
    for ax, (dataset, model) in zip(axes[0], settings):
        block = table[(table["dataset"] == dataset) & (table["model"] == model)]
        for _, row in block.iterrows():
            colour, marker = style[row["method"]]
            ax.errorbar(row["RetDev_mean"], row["Indisc_mean"], xerr=row["RetDev_std"], yerr=row["Indisc_std"],
                        fmt=marker, color=colour, markersize=7, capsize=2, label=methods.label(row["method"]),
                        markeredgecolor="black", markeredgewidth=0.4)
        ax.set_title(f"{dataset} / {model}")
        ax.set_xlabel("RetDev (retention deviation, lower is better)")
        ax.set_ylim(-0.02, 1.05)
    axes[0][0].set_ylabel("Indisc (test MIA, higher is better)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, title="method")
    fig.suptitle("Retention deviation vs indiscernibility (best: bottom-left x, top y)", y=1.02)
    fig.tight_layout()
    save(fig, png, pdf)
