"""IU, influence unlearning with the WoodFisher approximation (eval mode throughout):
v = g_f / (n_f + n_r) - g_r n_f / ((n_f + n_r) n_r), with g_f and g_r the summed
per-sample CE gradients over the forget and retain sets; k ~ H^-1 v from the WoodFisher
rank-one recursion over single retain samples in order (damping N = 1000);
theta = theta + alpha k. No optimiser.

Speed: in that recursion o only ever gets rescaled, so o = s g_1 (the first sample's
gradient) and k = v - c g_1 for scalars s and c, and each later sample g enters only
through g.g_1 and g.v. Those two numbers per sample are forward-mode derivatives of the
per-sample losses along g_1 and v (torch.func.jvp), computed for a batch at a time: no
per-sample gradient is formed (resnet18/digits, one CPU thread: 110 s -> 9 s per run).
The literal recursion (tests/oracles.py's `woodfisher`, over `single_sample_gradients`)
is kept in the tests, which check the fast path against it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call, jvp
from torch.nn.attention import SDPBackend, sdpa_kernel

from ._spaces import suggest_batch
from ._surgery import add_flat_, flat_grad, trainable

NAME = "iu"
LABEL = "IU"
READS = ("retain", "forget")
DEFAULTS = {"batch_size": 256, "alpha": 0.2}
DAMPING = 1000.0
# "About 1,000" samples: the reference loop stops after the sample with index N + 1,
# so it reads N + 2 single retain samples (the first initialises o).
WOODFISHER_SAMPLES = 1002
DOTS_BATCH = 128  # samples per forward-mode pass (any size gives the same numbers)


def search_space(trial, epoch_cap: int) -> dict:
    return {
        "batch_size": suggest_batch(trial),
        "alpha": trial.suggest_float("alpha", 0.0, 1.0),
    }


def summed_gradient(model, split, batch_size: int) -> torch.Tensor:
    """Sum over batches (in order) of the batch-mean CE gradient times the batch size."""
    params = trainable(model)
    total = torch.zeros(sum(p.numel() for p in params), device=params[0].device, dtype=params[0].dtype)
    for x, y in split.batches(batch_size, shuffle=False):
        total.add_(flat_grad(F.cross_entropy(model(x), y), params), alpha=len(y))
    return total


def influence_direction(g_forget: torch.Tensor, g_retain: torch.Tensor, n_forget: int, n_retain: int) -> torch.Tensor:
    """v = g_f / (n_f + n_r) - g_r n_f / ((n_f + n_r) n_r)."""
    n = n_forget + n_retain
    return g_forget / n - g_retain * (n_forget / (n * n_retain))


def single_sample_gradients(model, split, limit: int):
    """Per-sample CE gradients of the first `limit` samples of `split`, in order."""
    params = trainable(model)
    for i in range(min(limit, len(split))):
        x = split.normalise(split.images[i:i + 1])
        yield flat_grad(F.cross_entropy(model(x), split.labels[i:i + 1]), params)


def gradient_dots(model, split, directions: list[torch.Tensor], start: int, stop: int) -> torch.Tensor:
    """(n, len(directions)) float64: g_i . u for the per-sample CE gradient g_i of each
    sample i in start..stop-1 of `split` (in order) and each flat direction u (laid out
    as torch.cat of the flattened trainable parameters): the derivative of the
    per-sample losses along u, by forward-mode AD, DOTS_BATCH samples per pass."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    names, primals = [n for n, _ in named], tuple(p.detach() for _, p in named)
    tangents = [tuple(t.view_as(p) for t, p in zip(u.split([p.numel() for p in primals]), primals))
                for u in directions]
    out = []
    # The math attention kernel has forward-mode derivatives (TinyViT); the fused one may not.
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        for lo in range(start, min(stop, len(split)), DOTS_BATCH):
            hi = min(lo + DOTS_BATCH, stop, len(split))
            x, y = split.normalise(split.images[lo:hi]), split.labels[lo:hi]

            def losses(*params):
                logits = functional_call(model, dict(zip(names, params)), (x,))
                return F.cross_entropy(logits, y, reduction="none")

            out.append(torch.stack([jvp(losses, primals, t)[1] for t in tangents], 1).double())
    return torch.cat(out) if out else torch.zeros(0, len(directions), dtype=torch.float64)


def woodfisher_from_dots(v: torch.Tensor, g_first: torch.Tensor, dots_first, dots_v,
                         damping: float = DAMPING) -> torch.Tensor:
    """The literal recursion `woodfisher(v, [g_first, g_2, g_3, ...])` in closed form from g_j.g_first and
    g_j.v (j = 2, 3, ...): with o = s g_first and k = v - c g_first, each step is
    og = s (g.g_first); kg = g.v - c (g.g_first); c += s kg / (N + og);
    s *= 1 - og / (N + og)."""
    s, c = 1.0, 0.0
    for a, b in zip(torch.as_tensor(dots_first).tolist(), torch.as_tensor(dots_v).tolist()):
        og = s * a
        denom = damping + og
        kg = b - c * a
        c += s * kg / denom
        s *= 1.0 - og / denom
    return v - c * g_first


def unlearn(model, data, hp, generator):
    retain, forget = data.retain, data.forget
    batch_size = int(hp["batch_size"])
    model.eval()
    # fp32 whatever the job's precision: k sums a thousand rank-one terms.
    with torch.autocast(retain.device.type, enabled=False):
        g_forget = summed_gradient(model, forget, batch_size)
        g_retain = summed_gradient(model, retain, batch_size)
        v = influence_direction(g_forget, g_retain, len(forget), len(retain))
        if len(retain) == 0:
            k = v
        else:
            g_first = next(single_sample_gradients(model, retain, 1))
            dots = gradient_dots(model, retain, [g_first, v], 1, WOODFISHER_SAMPLES)
            k = woodfisher_from_dots(v, g_first, dots[:, 0], dots[:, 1], DAMPING)
    add_flat_(trainable(model), float(hp["alpha"]) * k)
    return model.eval()
