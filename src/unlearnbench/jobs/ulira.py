"""U-LiRA's jobs (workflow/rules/ulira.smk; the attack itself is attacks/ulira.py, its
files attacks/ulira_files.py, its table and figure report/): the split file, shadow
training and unlearning that keep only float16 logit banks, and its hyperparameter
search on shadow splits (the attack job is jobs/ulira_attack.py).

One shadow job handles a whole split (the original and retrained models of its F
forget sets; or, per method, the unlearning of its F originals), so the start-up of
Python and torch is paid once per split, not once per model.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from .. import REFERENCES, data, evaluate, io, methods, models, runtime
from ..attacks import ulira
from ..attacks.mia import mia_accuracy
from ..attacks.ulira_files import load_state, read_bank, save_states, write_bank
from ..batches import Split
from ..train import Recipe, train
from .context import DeviceContext


# ----------------------------------------------------------------------------- shadow models


class ShadowContext(DeviceContext):
    """U-LiRA's shadow jobs: the attack pool and the validation set on the device, with
    the split design."""

    def __init__(self, dataset: str, design_path, data_dir="data", download=False, device="auto",
                 precision="fp32", threads=None, image_size=None, verify_checksums=True):
        super().__init__(dataset, device, precision, threads, image_size)
        self.design = ulira.Design.load(design_path)
        pool = data.load_pool(dataset, data_dir, download, self.spec.image_size, verify_checksums)
        d = self.design
        if max(int(d.pool.max()), int(d.val.max())) >= pool.n_train or \
                not np.array_equal(pool.labels.numpy()[d.pool], d.labels):
            raise io.CorruptFileError(f"{design_path} does not match the {dataset} dataset; delete it to redraw")
        self.pool = Split(pool.images[torch.from_numpy(d.pool)].to(self.device),
                          pool.labels[torch.from_numpy(d.pool)].to(self.device), self.spec)
        self.val = Split(pool.images[torch.from_numpy(d.val)].to(self.device),
                         pool.labels[torch.from_numpy(d.val)].to(self.device), self.spec)

    def subset(self, mask: np.ndarray) -> Split:
        return self.pool.subset(torch.from_numpy(self.design.positions(mask)))

    def unlearn_data(self, split: int, forget_set: int) -> dict[str, Split]:
        d = self.design
        return {"retain": self.subset(d.retain_mask(split, forget_set)),
                "forget": self.subset(d.forget_mask[split, forget_set]), "val": self.val}

    def training_data(self, split: int, forget_set: int, kind: str) -> Split:
        """original: the IN half; retrained: the IN half minus the forget set."""
        d = self.design
        return self.subset(d.in_mask[split] if kind == "original" else d.retain_mask(split, forget_set))

    def new_model(self, model: str, seed: int | None = None) -> torch.nn.Module:
        net = models.build(model, self.spec.num_classes, self.spec.image_size, seed=seed)
        return self.fit_precision(runtime.prepare_model(net, self.device, self.input_shape))

    def logits(self, net: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
        """Un-augmented eval-mode logits on the pool and on the validation set."""
        pool = evaluate.predict(net, self.pool, precision=self.precision).logits.numpy()
        val = evaluate.predict(net, self.val, precision=self.precision).logits.numpy()
        return pool, val

    def accuracies(self, pool_logits: np.ndarray, split: int, forget_set: int) -> dict:
        d = self.design
        correct = pool_logits.argmax(-1) == d.labels
        return {"retain_acc": float(correct[d.retain_mask(split, forget_set)].mean()),
                "forget_acc": float(correct[d.forget_mask[split, forget_set]].mean()),
                "out_acc": float(correct[~d.in_mask[split]].mean())}


def write_design(dataset: str, out, n_splits: int, n_forget_sets: int, val_fraction: float = 0.05,
                 forget_fraction: float = 0.1, data_dir="data", download=False,
                 verify_checksums=True) -> ulira.Design:
    pool = data.load_pool(dataset, data_dir, download, verify_checksums=verify_checksums)
    design = ulira.make_design(pool.n_train, pool.labels.numpy(), n_splits, n_forget_sets, val_fraction,
                               forget_fraction)
    design.save(out, dataset=np.array(dataset))
    print(f"{dataset}: validation {len(design.val)}, attack pool {design.n_pool}, IN half "
          f"{int(design.in_mask[0].sum())}, forget set {int(design.forget_mask[0, 0].sum())}, "
          f"{design.n_splits} splits x {design.n_forget_sets} forget sets")
    return design


def train_shadow_split(ctx: ShadowContext, model: str, split: int, recipe: dict, out_original, out_retrained,
                       out_weights, shared_init: bool = True) -> None:
    """The original (IN half) and retrained (IN minus forget set) models of every forget
    set of one split; all start from model seed 0's initialisation (`shared_init`, the
    reference's) or both from the one of (split, forget set); training is seeded by
    (split, forget set)."""
    d = ctx.design
    banks = {kind: {"logits": [], "val_logits": [], "seconds": [], "accuracy": []} for kind in REFERENCES}
    originals = {}
    for f in range(d.n_forget_sets):
        seed = ulira.shadow_seed(split, f)
        for kind in ("original", "retrained"):
            net = ctx.new_model(model, ulira.init_seed(split, f, shared_init))
            seconds = train(net, ctx.training_data(split, f, kind), Recipe.from_config(recipe),
                            runtime.seed_everything(seed), ctx.precision, desc=f"{kind} split {split} forget set {f}")
            pool_logits, val_logits = ctx.logits(net)
            acc = ctx.accuracies(pool_logits, split, f)
            print(f"split {split} forget set {f} {kind}: {seconds:.1f} s, {acc}")
            for key, value in zip(("logits", "val_logits", "seconds", "accuracy"),
                                  (pool_logits, val_logits, seconds, acc)):
                banks[kind][key].append(value)
            if kind == "original":
                originals[f] = net
    info = {"dataset": ctx.dataset, "model": model, "split": split, "recipe": recipe, "device": str(ctx.device),
            "shared_init": bool(shared_init)}
    for kind, out in (("original", out_original), ("retrained", out_retrained)):
        b = banks[kind]
        write_bank(out, np.stack(b["logits"]), np.stack(b["val_logits"]), b["seconds"],
                   {**info, "kind": kind, "accuracy": b["accuracy"]})
    save_states(out_weights, originals, {"dataset": ctx.dataset, "model": model, "split": split})


def unlearn_shadow_split(ctx: ShadowContext, model: str, method: str, split: int, hp: dict, weights, out_bank,
                         hp_source: dict | None = None) -> None:
    """Unlearn the F originals of one split with `method`; keep only their logits."""
    d = ctx.design
    logits, val_logits, seconds, accuracy = [], [], [], []
    for f in range(d.n_forget_sets):
        net = load_state(weights, f, ctx.new_model(model))
        generator = runtime.seed_everything(ulira.shadow_seed(split, f, 1))
        net, secs = methods.run(method, net, ctx.unlearn_data(split, f), ctx.spec.num_classes, hp, generator,
                                ctx.precision)
        pool_logits, v = ctx.logits(net)
        acc = ctx.accuracies(pool_logits, split, f)
        print(f"split {split} forget set {f} {method}: {secs:.2f} s, {acc}")
        logits.append(pool_logits), val_logits.append(v), seconds.append(secs), accuracy.append(acc)
    write_bank(out_bank, np.stack(logits), np.stack(val_logits), seconds,
               {"dataset": ctx.dataset, "model": model, "split": split, "kind": method,
                "hyperparameters": methods.hyperparameters(method, hp), "hyperparameters_source": hp_source or {},
                "accuracy": accuracy, "device": str(ctx.device)})


# ----------------------------------------------------------------------------- the attack


# ----------------------------------------------------------------------------- search on shadow splits


def metrics_from_logits(design: ulira.Design, split: int, forget_set: int, pool_logits, val_logits) -> dict:
    """RA (retain of the (split, forget set)), FA, VA and val MIA of one shadow model from
    its logits, rounded to float16 as in the banks so searched and reference models
    are measured alike."""
    import torch.nn.functional as F

    def losses_and_correct(logits, labels):
        z = torch.from_numpy(np.asarray(logits, dtype=np.float16).astype(np.float32))
        y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        return F.cross_entropy(z, y, reduction="none").double().numpy(), (z.argmax(1) == y).numpy()

    pool_losses, pool_correct = losses_and_correct(pool_logits, design.labels)
    val_losses, val_correct = losses_and_correct(val_logits, design.val_labels)
    forget = design.forget_mask[split, forget_set]
    return {"retain_acc": float(pool_correct[design.retain_mask(split, forget_set)].mean()),
            "forget_acc": float(pool_correct[forget].mean()), "val_acc": float(val_correct.mean()),
            "val_mia": mia_accuracy(pool_losses[forget], val_losses)}


def search_job(ctx: ShadowContext, model: str, method: str, split: int, settings, weights, retrained_bank,
               out_csv, progress: bool = True):
    """One U-LiRA search study (docs/protocol.md §6) run by the main search's runner
    (jobs/search.py run_search): each trial unlearns a copy of the shadow original of
    (split, forget set 0) and is measured from its logits against the retrained shadow
    model of (split, 0), read from its logit bank. The sampler seed is the same in every
    split's study, as the reference's (docs/reference.md, U8)."""
    from .search import run_search

    design = ctx.design
    bank = read_bank(retrained_bank, design, split)
    reference = metrics_from_logits(design, split, 0, bank["logits"][0], bank["val_logits"][0])
    print(f"retrained shadow model of split {split}, forget set 0: {reference}")
    original = load_state(weights, 0, ctx.new_model(model))
    data_ = ctx.unlearn_data(split, 0)

    def unlearn(hp: dict, seed: int):
        return methods.run(method, copy.deepcopy(original), data_, ctx.spec.num_classes, hp,
                           runtime.seed_everything(seed), ctx.precision)

    return run_search(f"ulira/{ctx.dataset}/{model}/{method}/split{split}", method, settings,
                      ulira.shadow_seed(split, 0, 1), ulira.SEARCH_SAMPLER_SEED, unlearn,
                      lambda net: metrics_from_logits(design, split, 0, *ctx.logits(net)), reference,
                      {"dataset": ctx.dataset, "model": model, "split": split, "original": io.sha256(weights)},
                      out_csv, progress)
