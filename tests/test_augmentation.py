"""Batched augmentation draws what torchvision's per-sample transforms draw, and the fast
evaluation and training paths compute what the straightforward code computes."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from unlearnbench import cpu_rewrites, data, models
from unlearnbench.attacks.mia import mia_accuracy
from unlearnbench.batches import CROP_PADDING, Split, augment, crop_at, random_crop, random_flip
from unlearnbench.evaluate import evaluate, predict
from unlearnbench.train import Recipe, train

P = CROP_PADDING
K = 2 * P + 1  # 9 offsets per axis, 81 (top, left) positions


def images(n: int, seed: int = 0, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def position_images(n: int) -> torch.Tensor:
    """Channel 0 holds row + 1, channel 1 column + 1, channel 2 is 255 (0 only in padding),
    so the crop offset can be read back from any crop."""
    rows = torch.arange(1, 33, dtype=torch.uint8)[:, None].expand(32, 32)
    cols = torch.arange(1, 33, dtype=torch.uint8)[None, :].expand(32, 32)
    one = torch.stack([rows, cols, torch.full((32, 32), 255, dtype=torch.uint8)])
    return one.expand(n, -1, -1, -1).contiguous()


def offsets_of(crops: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(top, left) of each crop of position_images, read at the centre pixel (never padding)."""
    c = 16
    top = crops[:, 0, c, c].long() - 1 - c + P
    left = crops[:, 1, c, c].long() - 1 - c + P
    return top.numpy(), left.numpy()


# --------------------------------------------------------------------------- crop


def test_crop_offsets_are_uniform_over_the_81_positions():
    n = 81 * 200
    crops = random_crop(position_images(n), P, torch.Generator().manual_seed(0))
    top, left = offsets_of(crops)
    assert top.min() == 0 and top.max() == 2 * P and left.min() == 0 and left.max() == 2 * P
    counts = np.bincount(top * K + left, minlength=K * K)
    assert len(counts) == K * K and counts.min() > 0
    assert stats.chisquare(counts).pvalue > 1e-3


def test_torchvision_random_crop_has_the_same_support():
    """torchvision's RandomCrop(32, padding=4) picks (top, left) of the 40x40 padded image
    uniformly in {0..8}^2: the support our offsets are drawn from."""
    torch.manual_seed(0)
    seen = set()
    crop = v2.RandomCrop(32, padding=P)
    x = position_images(1)[0]
    for _ in range(2000):
        out = crop(x)
        top, left = offsets_of(out[None])
        seen.add((int(top[0]), int(left[0])))
    assert seen == {(t, l) for t in range(K) for l in range(K)}


def test_crop_at_every_offset_equals_torchvision_crop_of_the_zero_padded_image():
    x = images(3, seed=1)
    padded = TF.pad(x, [P, P, P, P], fill=0)
    for top in range(K):
        for left in range(K):
            t = torch.full((3,), top)
            l = torch.full((3,), left)
            expected = TF.crop(padded, top, left, 32, 32)
            assert torch.equal(crop_at(x, P, t, l), expected), (top, left)


def test_torchvision_random_crop_output_is_our_crop_at_its_offset():
    """The whole torchvision transform (padding included) equals crop_at at the offset it drew."""
    crop = v2.RandomCrop(32, padding=P)
    marker = position_images(1)[0]
    for seed in range(20):
        x = images(1, seed=100 + seed)[0]
        torch.manual_seed(seed)
        out = crop(x)
        torch.manual_seed(seed)
        top, left = offsets_of(crop(marker)[None])
        ours = crop_at(x[None], P, torch.tensor(top), torch.tensor(left))[0]
        assert torch.equal(out, ours)


def test_crops_differ_per_sample_and_keep_shape_and_dtype():
    x = position_images(64)
    out = random_crop(x, P, torch.Generator().manual_seed(3))
    assert out.shape == x.shape and out.dtype == torch.uint8
    top, left = offsets_of(out)
    assert len(set(zip(top.tolist(), left.tolist()))) > 20


# --------------------------------------------------------------------------- flip


def test_flip_rate_is_one_half_and_flips_the_whole_width():
    n = 4000
    x = images(n, seed=2, size=8)
    out = random_flip(x, torch.Generator().manual_seed(4))
    flipped = torch.tensor([torch.equal(out[i], x[i].flip(-1)) for i in range(n)])
    kept = torch.tensor([torch.equal(out[i], x[i]) for i in range(n)])
    assert bool((flipped | kept).all())  # every sample is x or its mirror image, all channels and rows
    assert not bool((flipped & kept).any())  # random images are not symmetric
    assert stats.binomtest(int(flipped.sum()), n, 0.5).pvalue > 1e-3


def test_flip_does_not_touch_its_input():
    x = images(32, seed=5)
    before = x.clone()
    random_flip(x, torch.Generator().manual_seed(0))
    assert torch.equal(x, before)


def test_none_is_identity_and_draws_nothing():
    x = images(8)
    g = torch.Generator().manual_seed(7)
    state = g.get_state()
    assert torch.equal(augment(x, "none", g), x)
    assert torch.equal(g.get_state(), state)
    with pytest.raises(ValueError):
        augment(x, "rotate", g)


def test_crop_and_flip_are_independent_and_cover_162_outcomes():
    n = 162 * 100
    g = torch.Generator().manual_seed(11)
    out = augment(position_images(n), "crop_flip", g)
    flipped = (out[:, 1, 16, 15] > out[:, 1, 16, 16]).numpy()  # columns run right to left
    # undo the flip to read the offset
    unflipped = torch.where(torch.from_numpy(flipped)[:, None, None, None], out.flip(-1), out)
    top, left = offsets_of(unflipped)
    cells = (top * K + left) * 2 + flipped
    counts = np.bincount(cells, minlength=2 * K * K)
    assert stats.chisquare(counts).pvalue > 1e-3


# --------------------------------------------------------------------------- batches vs per-sample torchvision


def test_augmented_batches_equal_torchvision_per_sample_pipeline():
    """Split.batches(augment) = for each sample, torchvision's pad + crop, flip, ToTensor
    + Normalize, at the offsets and flips the generator drew (order: randperm, then per
    batch tops, lefts, flips), bit for bit."""
    from torchvision import transforms as T

    spec = data.get_spec("cifar10")
    n, bs = 50, 16
    split = Split(images(n, seed=8), torch.arange(n) % 10, spec)
    batches = list(split.batches(bs, shuffle=True, generator=torch.Generator().manual_seed(5), augment_data=True))
    g = torch.Generator().manual_seed(5)
    order = torch.randperm(n, generator=g)
    to_tensor = T.Compose([T.ToTensor(), T.Normalize(spec.mean, spec.std)])
    tail = lambda img: to_tensor(img.permute(1, 2, 0).numpy())  # noqa: E731  (HWC uint8, as from PIL)
    start = 0
    for x, y in batches:
        m = len(y)
        idx = order[start:start + m]
        top = torch.randint(0, K, (m,), generator=g)
        left = torch.randint(0, K, (m,), generator=g)
        flip = torch.rand(m, generator=g) < 0.5
        for i in range(m):
            img = TF.crop(TF.pad(split.images[idx[i]], [P] * 4), int(top[i]), int(left[i]), 32, 32)
            if flip[i]:
                img = TF.horizontal_flip(img)
            assert torch.equal(x[i], tail(img))
        assert torch.equal(y, split.labels[idx])
        start += m
    assert start == n


def test_unshuffled_batches_are_in_order_and_leave_the_split_untouched():
    spec = dataclasses.replace(data.get_spec("digits"), augmentation="flip")
    split = Split(images(20, seed=9), torch.arange(20), spec)
    before = split.images.clone()
    xs, ys = zip(*split.batches(8, shuffle=False, augment_data=True, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(torch.cat(ys), torch.arange(20))
    torch.cat(ys).add_(1)  # labels handed out are copies
    assert torch.equal(split.labels, torch.arange(20)) and torch.equal(split.images, before)
    plain = torch.cat([x for x, _ in split.batches(8, shuffle=False)])
    assert torch.equal(plain, split.normalise(split.images))


def test_normalise_is_bit_identical_to_to_tensor_and_normalize():
    from torchvision import transforms as T

    spec = data.get_spec("cifar10")
    split = Split(images(4, seed=10), torch.zeros(4, dtype=torch.long), spec)
    ours = split.normalise(split.images)
    pipeline = T.Compose([T.ToTensor(), T.Normalize(spec.mean, spec.std)])
    for i in range(4):
        hwc = split.images[i].permute(1, 2, 0).numpy()
        assert torch.equal(ours[i], pipeline(hwc))


# --------------------------------------------------------------------------- evaluation


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = models.SmallCNN(10, width=8)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding them matters
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


def eval_splits() -> dict[str, Split]:
    spec = data.get_spec("cifar10")
    sizes = {"retain": 90, "forget": 30, "val": 40, "test": 50}
    out = {}
    for i, (name, n) in enumerate(sizes.items()):
        g = torch.Generator().manual_seed(20 + i)
        out[name] = Split(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                          torch.randint(0, 10, (n,), generator=g), spec)
    return out


def straightforward(model: nn.Module, split: Split):
    """The plain computation: normalise everything, one eval-mode forward, no tricks."""
    mean = torch.tensor(split.spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(split.spec.std).view(1, 3, 1, 1)
    x = (split.images.float() / 255.0 - mean) / std
    model.eval()
    with torch.no_grad():
        logits = model(x)
    return logits, F.cross_entropy(logits, split.labels, reduction="none").double().numpy()


def test_evaluate_one_pass_equals_per_split_computation():
    model, splits = tiny_model(), eval_splits()
    reference = copy.deepcopy(model)
    got = evaluate(model, splits)
    want, losses = {}, {}
    for name, split in splits.items():
        logits, losses[name] = straightforward(reference, split)
        want[f"{name}_acc"] = float((logits.argmax(1) == split.labels).double().mean())
    want["val_mia"] = mia_accuracy(losses["forget"], losses["val"])
    want["test_mia"] = mia_accuracy(losses["forget"], losses["test"])
    want["diverged"], want["nonfinite_fraction"] = False, 0.0
    assert set(got) == set(want)
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-9), k


def test_predict_matches_and_leaves_the_model_as_it_was():
    model, split = tiny_model(1), eval_splits()["retain"]
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    p = predict(model, split, batch_size=32)
    logits, losses = straightforward(copy.deepcopy(model), split)
    torch.testing.assert_close(p.logits, logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(p.losses, losses, rtol=1e-5, atol=1e-6)
    assert np.array_equal(p.correct, (logits.argmax(1) == split.labels).numpy())
    assert model.training  # mode restored
    for k, v in model.state_dict().items():  # weights, BN statistics and layout untouched
        assert torch.equal(v, state[k]) and v.is_contiguous(), k
    assert not p.logits.is_inference()  # usable with autograd afterwards
    assert p.losses.dtype == np.float64 and p.correct.dtype == bool


def test_fold_batchnorm_is_the_same_function_and_falls_back():
    model = tiny_model(2).eval()
    x = torch.randn(6, 3, 32, 32)
    folded = cpu_rewrites.fold_batchnorm(model)
    assert folded is not None
    assert not any(isinstance(m, nn.BatchNorm2d) for n, m in folded.named_modules() if n in
                   {str(node.target) for node in folded.graph.nodes if node.op == "call_module"})
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-5)

    class Branchy(nn.Module):  # data-dependent control flow: not traceable
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.bn(self.conv(x))
            return y.mean((2, 3)) if y.sum() > 0 else -y.mean((2, 3))

    assert cpu_rewrites.fold_batchnorm(Branchy().eval()) is None
    hooked = tiny_model(3).eval()
    hooked.layer1.register_forward_hook(lambda m, i, o: o * 2)
    assert cpu_rewrites.fold_batchnorm(hooked) is None
    split = eval_splits()["val"]
    logits, _ = straightforward(copy.deepcopy(hooked), split)
    torch.testing.assert_close(predict(hooked, split).logits, logits, rtol=1e-5, atol=1e-5)


def test_dense_conv_equals_the_convolution_on_small_maps():
    torch.manual_seed(0)
    checked = 0
    for h, w, k, stride, pad, bias in [(1, 1, 3, 1, 1, False), (2, 2, 3, 1, 1, True), (2, 2, 3, 2, 1, False),
                                       (1, 2, 3, 1, 1, True), (2, 1, 5, 1, 2, False), (1, 1, 3, 2, 1, True)]:
        conv = nn.Conv2d(5, 7, k, stride, pad, bias=bias)
        x = torch.randn(4, 5, h, w)
        with torch.no_grad():
            want = conv(x)
            dense = cpu_rewrites.DenseConv(conv, (h, w), tuple(want.shape[-2:]))
            for layout in (torch.contiguous_format, torch.channels_last):
                got = dense(x.contiguous(memory_format=layout))
                assert got.shape == want.shape
                torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        checked += 1
    assert checked == 6


def test_resnet18_inference_copy_matches_and_is_specialised():
    """On 32x32 inputs ResNet-18's layer3/layer4 convolutions see 2x2 and 1x1 maps: the
    inference copy runs them as matrix products, with BatchNorm folded, same outputs."""
    torch.manual_seed(0)
    model = models.build("resnet18", 10, 32, seed=0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    split = eval_splits()["val"]
    logits, _ = straightforward(copy.deepcopy(model), split)
    with cpu_rewrites.inference_model(model, torch.device("cpu"), (3, 32, 32)) as net:
        dense = [n for n, m in net.named_modules() if isinstance(m, cpu_rewrites.DenseConv)]
        assert len(dense) == 7 and all(n.startswith(("layer3", "layer4")) for n in dense)
        assert not any(isinstance(m, nn.BatchNorm2d) for n, m in net.named_modules() if n in
                       {str(node.target) for node in net.graph.nodes if node.op == "call_module"})
    torch.testing.assert_close(predict(model, split).logits, logits, rtol=1e-4, atol=1e-4)
    assert model.training and not any(isinstance(m, cpu_rewrites.DenseConv) for m in model.modules())


@pytest.mark.parametrize("size, patched", [(8, 12), (16, 8), (32, 4)])
def test_one_pixel_convolutions_train_as_the_convolutions_do(size, patched):
    """dense_small_map_convs: ResNet-18's convolutions with a one-pixel output on a map
    smaller than their kernel run as linear layers; outputs and every gradient are the
    convolution's (the taps that only see padding get zero), the state dict and the
    parameters are the same objects, a copy keeps the patch, other sizes fall back."""
    torch.manual_seed(0)
    plain = models.build("resnet18", 10, size, seed=0)
    dense = copy.deepcopy(plain)
    names = cpu_rewrites.dense_small_map_convs(dense, (3, size, size))
    assert len(names) == patched and all(n.startswith(("layer2", "layer3", "layer4")) for n in names)
    assert dense.state_dict().keys() == plain.state_dict().keys()
    x, y = torch.randn(8, 3, size, size), torch.randint(0, 10, (8,))
    for layout in (torch.contiguous_format, torch.channels_last):
        for net in (plain, dense):
            net.to(memory_format=layout).train().zero_grad()
            F.cross_entropy(net(x.contiguous(memory_format=layout)), y).backward()
        for (name, a), b in zip(plain.named_parameters(), dense.parameters()):
            torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=1e-4 * float(a.grad.abs().max()), msg=name)
    conv = dense.get_submodule(names[-1])
    if conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv._small_map_plan[0] == (1, 1):
        assert torch.count_nonzero(conv.weight.grad[:, :, [0, 2]]) == 0  # only the centre tap sees data
    clone = copy.deepcopy(dense)
    assert clone.get_submodule(names[0]).forward.__self__ is clone.get_submodule(names[0])
    bigger = torch.randn(2, 3, 2 * size, 2 * size)  # not the planned size: the convolutions themselves
    torch.testing.assert_close(clone.eval()(bigger), plain.eval()(bigger), rtol=1e-4, atol=1e-5)
    # the evaluation copy (BatchNorm folded into a copy of the patched convolution, then densified)
    for net in (plain, dense):
        net.to(memory_format=torch.contiguous_format)
    cpu, shape = torch.device("cpu"), (3, size, size)
    with cpu_rewrites.inference_model(plain, cpu, shape) as a, cpu_rewrites.inference_model(dense, cpu, shape) as b:
        torch.testing.assert_close(b(x), a(x), rtol=1e-4, atol=1e-4)


def test_one_pixel_convolutions_follow_pruning_and_in_place_edits():
    from torch.nn.utils import prune

    torch.manual_seed(0)
    plain = models.build("resnet18", 10, 16, seed=0).eval()
    dense = copy.deepcopy(plain)
    cpu_rewrites.dense_small_map_convs(dense, (3, 16, 16))
    for net in (plain, dense):
        prune.l1_unstructured(net.layer4[1].conv2, "weight", amount=0.5)
        with torch.no_grad():
            net.layer4[0].conv1.weight.mul_(-1)
    x = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(dense(x), plain(x), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- training


def test_training_is_reproducible_and_restores_the_layout():
    spec = data.get_spec("cifar10")
    split = Split(images(40, seed=12), torch.arange(40) % 10, spec)
    runs = []
    for _ in range(2):
        model = tiny_model(4)
        train(model, split, Recipe(epochs=2, batch_size=16), torch.Generator().manual_seed(3), progress=False)
        assert all(p.is_contiguous() for p in model.parameters())
        runs.append(model.state_dict())
    for k in runs[0]:
        assert torch.equal(runs[0][k], runs[1][k]), k


def test_training_matches_the_plain_loop():
    """train() = the textbook loop (plain torch.optim.SGD, NCHW weights, same batches)
    up to float rounding: the fused update and channels_last change nothing else."""
    spec = data.get_spec("cifar10")
    split = Split(images(40, seed=13), torch.arange(40) % 10, spec)
    model = tiny_model(5)
    reference = copy.deepcopy(model)
    train(model, split, Recipe(epochs=2, batch_size=16), torch.Generator().manual_seed(6), progress=False)
    g = torch.Generator().manual_seed(6)
    opt = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2)
    reference.train()
    for _ in range(2):
        for x, y in split.batches(16, shuffle=True, generator=g, augment_data=True):
            loss = F.cross_entropy(reference(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    for (k, a), b in zip(model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)
