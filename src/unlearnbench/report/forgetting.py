"""Per-example forgetting quality from the U-LiRA shadow bank, without training anything
new: the NeurIPS 2023 challenge's ε score (attacks/epsilon.py) and KLOM
(attacks/klom.py), registered in attacks/registry.py EXAMPLE_SCORES, their tables (results/tables/{epsilon,klom}.{csv,md}, with the
per-example values beside the bank), the tables' explanations and the figures; the scores
themselves are computed in forgetting_scores.py. Which bank models stand on each side
of an example: attacks/sides.py (docs/protocol.md §6 for the bank).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import io
from ..attacks import epsilon as eps_score
from ..attacks import sides as ub_sides
from ..attacks import ulira
from .forgetting_scores import KLOM_MIN_MODELS, epsilon_scores, klom_scores, models_per_side

# The table jobs import neither torch nor the method registry: the rule hands them each
# kind's display label, in display order (report/tables.py kind_order, kind_label).


def _order(banks: Mapping, labels: Mapping[str, str] | None) -> tuple[list[str], dict[str, str]]:
    if labels is None:
        refs = [k for k in ("retrained", "original") if k in banks]
        labels = {k: k for k in refs + [k for k in banks if k not in refs]}
    missing = [k for k in banks if k not in labels]
    if missing:
        raise ValueError(f"no label for kind(s) {', '.join(missing)}")
    return [k for k in labels if k in banks], dict(labels)


# ----------------------------------------------------------------------------- notes


def _bank_note(design: ulira.Design, n: int, meaningful_from: int = ub_sides.MIN_MODELS) -> str:
    available = ub_sides.counts(design, "forget")
    scored = int((available >= n).sum())
    note = (f"{design.n_splits} splits x {design.n_forget_sets} forget sets; {n} models per side per example "
            f"(the median over the pool of the models available on an example's scarcer side, usually those that "
            f"forgot it: {np.median(available):g}); "
            f"{scored} of {design.n_pool} pool examples have {n} on both sides.")
    if n < meaningful_from or np.median(available) < ub_sides.MIN_MODELS:
        note += (f" **The bank is too small for this score**: it needs at least {meaningful_from} models per side "
                 "for most examples; with fewer it sits far from its ideal even for retraining (README, \"How many "
                 "models\"). An example gets about splits x forget_sets x forget_fraction / 2 models that forgot "
                 "it.")
    return note


# ----------------------------------------------------------------------------- ε score


def epsilon_job(design_path, banks: Mapping[str, Sequence], out_csv, out_md, out_values,
                models: int | None = None, dataset: str = "", model: str = "",
                labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The challenge's forget and final scores per kind (a method, original or retrained;
    `banks` maps each kind to its banks in split order; "retrained" is required).
    Scored side: the kind's models whose forget set held the example; reference side:
    retrained models whose split had it OUT (attacks/sides.py)."""
    design = ulira.Design.load(design_path)
    if "retrained" not in banks:
        raise ValueError("the ε score needs the retrained banks")
    n = models_per_side(design, models)
    order, labels = _order(banks, labels)
    table, values, chosen = epsilon_scores(design, banks, order, n, dataset, model)
    with io.atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    io.save_npz(out_values, **values, examples=np.flatnonzero(chosen.ok), models_per_side=np.array(n))
    ladder = eps_score.bucket_points(n)
    top = max(ladder) + eps_score.BUCKET_SIZE if ladder else 0.0
    lines = [f"# NeurIPS 2023 unlearning challenge score: {dataset} / {model}\n",
             _bank_note(design, n) + " Per forget example, ε at δ = 1e-5 between the logit-scaled confidences "
             "under the models that forgot it and under retrained models that never saw it (threshold attacks, "
             f"capped at 50); points 1, 1/2, 1/4, ... per ε bucket of width 0.5 up to {top:g} "
             f"(= ceil(log(n - 1)) for n = {n}), 0 beyond. Forget score = mean points (1 = indistinguishable from "
             "retraining, 0 = every example told apart), ± s.e. over examples; final = forget x RA/RA_R x TA/TA_R "
             "(TA on the held-out validation set). The retrained row is the noise floor: an exact unlearner's "
             "score with this many models.\n"]
    shown = pd.DataFrame({
        "Method": [labels[k] for k in table["method"]],
        "Forget score": [_pm(s, se) for s, se in zip(table["forget_score"], table["forget_score_se"])],
        "Final score": [_num(x) for x in table["final_score"]],
        "median ε": [_num(x, 2) for x in table["epsilon_median"]],
        "ε < 0.5": [_pct(x) for x in table["share_best_bucket"]],
        "0 points": [_pct(x) for x in table["share_zero_points"]],
        "RA/RA_R": [_num(x) for x in table["retain_ratio"]],
        "TA/TA_R": [_num(x) for x in table["test_ratio"]],
        "examples": table["n_examples"],
    })
    lines.append(shown.to_markdown(index=False) + "\n")
    io.write_text(out_md, "\n".join(lines))
    print(table.to_string())
    return table


# ----------------------------------------------------------------------------- KLOM


def klom_job(design_path, banks: Mapping[str, Sequence], out_csv, out_md, out_values,
             models: int | None = None, dataset: str = "", model: str = "",
             labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """KLOM per kind and role (forget, retain, val), percentiles over examples; the same
    number of models per side for every role (attacks/sides.py)."""
    design = ulira.Design.load(design_path)
    if "retrained" not in banks:
        raise ValueError("KLOM needs the retrained banks")
    n = models_per_side(design, models)
    order, labels = _order(banks, labels)
    table, values = klom_scores(design, banks, order, n, dataset, model)
    with io.atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    io.save_npz(out_values, **values, models_per_side=np.array(n))
    lines = [f"# KLOM: {dataset} / {model}\n",
             _bank_note(design, n, KLOM_MIN_MODELS) + " Per example, D_KL(retrained || unlearned) between the "
             "margins z_y - logsumexp_{j != y} z_j under the two sides' models, binned in 20 bins over their joint range "
             "(1e-5 in the unlearned side's empty bins): 0 = the same distribution; larger = unlike retraining. "
             "Forget: models that forgot the example vs retrained models that never saw it; retain: models that "
             "kept it vs other retrained models that trained on it; val: held-out validation examples. "
             "Median / 95th percentile over examples. The retrained row is the noise floor of this bank size.\n"]
    wide = []
    for kind in order:
        row = {"Method": labels[kind]}
        for role in ub_sides.ROLES:
            r = table[(table["method"] == kind) & (table["role"] == role)].iloc[0]
            row[f"{role} p50"] = _num(r["p50"], 2)
            row[f"{role} p95"] = _num(r["p95"], 2)
        wide.append(row)
    lines.append(pd.DataFrame(wide).to_markdown(index=False) + "\n")
    counts = {role: int(table[(table["role"] == role)]["n_examples"].iloc[0]) for role in ub_sides.ROLES}
    lines.append("Examples per role: " + ", ".join(f"{r} {c}" for r, c in counts.items()) + ".\n")
    io.write_text(out_md, "\n".join(lines))
    print(table.to_string())
    return table


# ----------------------------------------------------------------------------- formatting


def _num(x, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _pm(x, se) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "–"
    return f"{x:.3f}" if isinstance(se, float) and math.isnan(se) else f"{x:.3f} ± {se:.3f}"


def _pct(x) -> str:
    return "–" if isinstance(x, float) and math.isnan(x) else f"{100 * x:.0f} %"


# ----------------------------------------------------------------------------- figures


def epsilon_figure(values_npz, table_csv, png, pdf, title: str = "") -> None:
    """Left: the distribution (ECDF) of per-example ε per kind, bucket edges marked;
    right: forget and final score per kind."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from .figures import method_style, save
    from .tables import kind_label, kind_order

    arrays = io.load_npz(values_npz)
    n = int(arrays.pop("models_per_side"))
    arrays.pop("examples")
    table = pd.read_csv(table_csv)
    kinds = kind_order([k for k in arrays])
    style = method_style()
    style.update({k: v for k, v in method_style(kinds).items() if k not in style})
    ladder = eps_score.bucket_points(n)
    top = max(ladder) + eps_score.BUCKET_SIZE if ladder else 1.0
    sns.set_theme(style="whitegrid", context="paper")
    fig, (ax_e, ax_s) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1.3, 1]})
    shown_max = top + 1.0
    for kind in kinds:
        e = np.minimum(arrays[kind], shown_max)
        if not e.size:
            continue
        colour, _ = style[kind]
        xs = np.sort(e)
        ax_e.step(np.concatenate([[0], xs]), np.arange(len(xs) + 1) / len(xs), where="post", color=colour,
                  lw=1.8 if kind in ("retrained", "original") else 1.2,
                  ls="--" if kind in ("retrained", "original") else "-", label=kind_label(kind))
    for start, pts in ladder.items():
        ax_e.axvline(start + eps_score.BUCKET_SIZE, color="grey", lw=0.6, ls=":")
        ax_e.text(start + eps_score.BUCKET_SIZE / 2, 1.01, f"{pts:g}", ha="center", va="bottom", fontsize=7,
                  transform=ax_e.get_xaxis_transform())
    ax_e.set_xlim(0, shown_max)
    ax_e.set_xlabel(f"per-example ε (δ = 1e-5; beyond {shown_max:g} shown at {shown_max:g}; cap 50)")
    ax_e.set_ylabel("share of forget examples with ε ≤ x")
    ax_e.set_title(f"ε per example, {n} models per side (points per bucket above)", fontsize=9, pad=14)
    ax_e.legend(fontsize=7, loc="lower right")
    order = [k for k in kinds if k in set(table["method"])]
    t = table.set_index("method").loc[order]
    x = np.arange(len(order))
    ax_s.bar(x - 0.2, t["forget_score"], 0.4, yerr=t["forget_score_se"], color=[style[k][0] for k in order],
             edgecolor="black", lw=0.5, label="forget score")
    ax_s.bar(x + 0.2, t["final_score"], 0.4, color=[style[k][0] for k in order], edgecolor="black", lw=0.5,
             hatch="//", alpha=0.6, label="final score (x RA, TA ratios)")
    ax_s.set_xticks(x, [kind_label(k).replace(" (", "\n(") for k in order], rotation=30, ha="right", fontsize=7)
    ax_s.set_ylabel("score (1 = like retraining)")
    ax_s.set_ylim(0, max(1.05, float(np.nanmax(t[["forget_score", "final_score"]].to_numpy())) * 1.05))
    ax_s.legend(fontsize=7)
    ax_s.set_title("NeurIPS 2023 challenge scores", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save(fig, png, pdf)


def klom_figure(values_npz, table_csv, png, pdf, title: str = "") -> None:
    """Per role (forget, retain, val), the distribution of per-example KLOM per kind
    (box plots; symmetric-log axis, 0 = like retraining); `table_csv` is not read (the
    figure signature of attacks/registry.py ExampleScore)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from .figures import method_style, save
    from .tables import kind_label, kind_order

    arrays = io.load_npz(values_npz)
    n = int(arrays.pop("models_per_side"))
    frames = []
    for key, kl in arrays.items():
        kind, role = key.rsplit("__", 1)
        frames.append(pd.DataFrame({"kind": kind, "role": role, "KLOM": kl}))
    frame = pd.concat(frames, ignore_index=True)
    kinds = kind_order(list(dict.fromkeys(frame["kind"])))
    style = method_style()
    style.update({k: v for k, v in method_style(kinds).items() if k not in style})
    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(1, len(ub_sides.ROLES), figsize=(4 * len(ub_sides.ROLES), 4.2), sharey=True)
    for ax, role in zip(axes, ub_sides.ROLES):
        sub = frame[frame["role"] == role]
        if len(sub):
            sns.boxplot(data=sub, x="kind", y="KLOM", order=kinds, hue="kind", hue_order=kinds,
                        palette={k: style[k][0] for k in kinds}, legend=False, fliersize=1.5, ax=ax)
        ax.set_yscale("symlog", linthresh=0.1)
        ax.set_title(f"{role} examples ({int(sub.shape[0] / max(len(kinds), 1))})", fontsize=9)
        ax.set_xlabel("")
        ax.set_xticks(range(len(kinds)), [kind_label(k).replace(" (", "\n(") for k in kinds], rotation=30,
                      ha="right", fontsize=7)
    axes[0].set_ylabel("KLOM = D_KL(retrained || unlearned), per example")
    fig.suptitle(title or f"KLOM, {n} models per side")
    fig.tight_layout()
    save(fig, png, pdf)
