"""CPU rewrites of a model that compute the same function faster: BatchNorm folded into
the convolutions of a traced inference copy, convolutions on maps smaller than their kernel
as matrix products (DenseConv, inference) or linear layers (dense_small_map_convs, training
too), and the evaluation copy that uses them (inference_model)."""

from __future__ import annotations

import contextlib
import types

import torch
import torch.nn.functional as F


def one_image_pass(model: torch.nn.Module, input_shape: tuple[int, ...], hooks: list) -> None:
    """Run one all-zero image of `input_shape` (C, H, W) through `model` in eval mode for
    the probes whose handles are `hooks`, then remove them and restore the model's mode
    (nothing runs without hooks)."""
    was_training = model.training
    try:
        if hooks:
            param = next(model.parameters())
            model.eval()
            model(torch.zeros((1, *input_shape), device=param.device, dtype=param.dtype))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)



def _has_hooks(model: torch.nn.Module) -> bool:
    return any(m._forward_hooks or m._forward_pre_hooks or getattr(m, "parametrizations", None)
               for m in model.modules())


_UNTRACEABLE: set[type] = set()


@torch.no_grad()
def fold_batchnorm(model: torch.nn.Module) -> torch.nn.Module | None:
    """A traced (torch.fx) inference copy of an eval-mode `model` in which every
    BatchNorm2d that follows a Conv2d is folded into it: the same function in eval mode,
    one layer fewer to run. The folded convolutions are new modules, stored
    channels_last; every other module is shared with `model`, which is left unchanged.
    None when the model cannot be traced or carries hooks that a traced copy would drop."""
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode")
    if (type(model) in _UNTRACEABLE or _has_hooks(model)
            or not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())):
        return None
    from torch import fx
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    try:
        traced = fx.symbolic_trace(model)  # leaf modules are shared, containers are new
    except Exception:  # data-dependent control flow (timm's TinyViT...): run the model as is
        _UNTRACEABLE.add(type(model))
        return None
    modules = dict(traced.named_modules())
    calls: dict[str, int] = {}
    for node in traced.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    for node in list(traced.graph.nodes):
        bn = modules.get(node.target) if node.op == "call_module" else None
        if type(bn) is not torch.nn.BatchNorm2d or not node.args or not isinstance(node.args[0], fx.Node):
            continue
        conv_node = node.args[0]
        conv = modules.get(conv_node.target) if conv_node.op == "call_module" else None
        if (type(conv) is not torch.nn.Conv2d or len(conv_node.users) > 1 or not bn.track_running_stats
                or bn.running_mean is None or calls[conv_node.target] > 1 or calls[node.target] > 1):
            continue
        fused = fuse_conv_bn_eval(conv, bn)  # a new conv, weights folded
        fused.weight.data = fused.weight.data.contiguous(memory_format=torch.channels_last)
        parent, _, name = conv_node.target.rpartition(".")
        setattr(traced.get_submodule(parent) if parent else traced, name, fused)
        modules[conv_node.target] = fused
        node.replace_all_uses_with(conv_node)
        traced.graph.erase_node(node)
    traced.graph.lint()
    traced.recompile()
    return traced.eval()


class DenseConv(torch.nn.Module):
    """A Conv2d on a fixed, small input map (H x W < its kernel's taps) as one matrix
    product over the flattened map: the same function with fewer multiply-adds, since
    the taps that only ever see zero padding are dropped (ResNet-18's ImageNet stem
    leaves 2x2 and 1x1 maps in layer3 and layer4 on 32x32 images). Inference only: the
    dense matrix is built once (dense_small_map_convs is the trainable form of its
    one-output-pixel case)."""

    def __init__(self, conv: torch.nn.Conv2d, in_hw: tuple[int, int], out_hw: tuple[int, int]):
        super().__init__()
        (h, w), (ho, wo) = in_hw, out_hw
        cout, cin, kh, kw = conv.weight.shape
        (sh, sw), (ph, pw) = conv.stride, conv.padding
        weight = conv.weight.detach()
        dense = weight.new_zeros(ho, wo, cout, h, w, cin)
        for oh in range(ho):
            for ow in range(wo):
                for ih in range(h):
                    for iw in range(w):
                        th, tw = ih - oh * sh + ph, iw - ow * sw + pw
                        if 0 <= th < kh and 0 <= tw < kw:
                            dense[oh, ow, :, ih, iw, :] = weight[:, :, th, tw]
        self.register_buffer("weight", dense.reshape(ho * wo * cout, h * w * cin).t().contiguous())
        bias = conv.bias.detach() if conv.bias is not None else weight.new_zeros(cout)
        self.register_buffer("bias", bias.repeat(ho * wo))
        self.out_shape = (ho, wo, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]  # (n, c, h, w) -> (n, h*w*c) rows, a view when x is channels_last
        y = torch.addmm(self.bias, x.permute(0, 2, 3, 1).reshape(n, -1), self.weight)
        return y.view(n, *self.out_shape).permute(0, 3, 1, 2)  # channels_last (n, cout, ho, wo)


def _one_pixel_forward(self: torch.nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """Conv2d.forward for a convolution patched by dense_small_map_convs: on the map
    size it was planned for, a linear layer over the input pixels its single output
    pixel sees, with the kernel taps that see them (a view of the weight); on any other
    size, the convolution itself."""
    in_hw, (h, w) = self._small_map_plan
    if tuple(x.shape[-2:]) != in_hw:
        return torch.nn.Conv2d.forward(self, x)
    ph, pw = self.padding
    weight = self.weight[:, :, ph:ph + h, pw:pw + w].permute(0, 2, 3, 1).reshape(self.out_channels, -1)
    rows = x[:, :, :h, :w].permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # (h, w, c) order, as the weight
    return F.linear(rows, weight, self.bias)[:, :, None, None]


@torch.no_grad()
def dense_small_map_convs(model: torch.nn.Module, input_shape: tuple[int, ...]) -> list[str]:
    """Make each Conv2d of `model` whose output is one pixel for inputs of `input_shape`
    (C x H x W) and whose input map has fewer pixels than its kernel has taps run as a
    linear layer over the input pixels, in training too. The weight stays the module's
    parameter (hooks, pruning masks and in-place edits keep working; the state dict is
    unchanged); the taps that only see zero padding get an exactly zero gradient from
    the convolution, and get none here either. The same function with far fewer
    multiply-adds: ResNet-18's layer3 and layer4 see 2x2 and 1x1 maps on 16x16 inputs,
    where a 3x3 convolution does up to 9x the work it needs (benchmarks/small_map_convs.py).
    Other input sizes fall back to the convolution. Found with one 1-image forward pass
    in eval mode (the mode is restored); returns the patched modules' names."""
    plans: dict[str, tuple] = {}

    def plan(name):
        def hook(module, args, output):
            (h, w), (kh, kw), (ph, pw) = args[0].shape[-2:], module.kernel_size, module.padding
            if tuple(output.shape[-2:]) == (1, 1) and h * w < kh * kw:
                # the output pixel sees input rows 0 .. min(h, kh - ph) - 1 through taps ph ..
                plans[name] = ((h, w), (min(h, kh - ph), min(w, kw - pw)))
        return hook

    convs = {name: m for name, m in model.named_modules() if type(m) is torch.nn.Conv2d and m.groups == 1
             and m.dilation == (1, 1) and m.padding_mode == "zeros" and not isinstance(m.padding, str)}
    hooks = [m.register_forward_hook(plan(name)) for name, m in convs.items()]
    one_image_pass(model, input_shape, hooks)
    for name, found in plans.items():
        convs[name]._small_map_plan = found
        convs[name].forward = types.MethodType(_one_pixel_forward, convs[name])
    return sorted(plans)


@torch.no_grad()
def densify_small_convs(traced: torch.fx.GraphModule, input_shape: tuple[int, ...]) -> int:
    """Replace, in a traced inference copy, each Conv2d whose input map (for inputs of
    `input_shape`, without the batch dimension) has fewer pixels than its kernel has
    taps by a DenseConv; the copy is then valid for that input size only. Returns how
    many were replaced."""
    from torch.fx.passes.shape_prop import ShapeProp

    try:
        ShapeProp(traced).propagate(torch.zeros((1, *input_shape)))
    except Exception:  # shapes not known statically: leave the convolutions as they are
        return 0
    modules = dict(traced.named_modules())
    replaced = 0
    for node in traced.graph.nodes:
        conv = modules.get(node.target) if node.op == "call_module" else None
        meta_in = node.args[0].meta.get("tensor_meta") if node.args and isinstance(node.args[0], torch.fx.Node) else None
        meta_out = node.meta.get("tensor_meta")
        if (type(conv) is not torch.nn.Conv2d or meta_in is None or meta_out is None or conv.groups != 1
                or conv.dilation != (1, 1) or conv.padding_mode != "zeros" or isinstance(conv.padding, str)):
            continue
        (h, w), (ho, wo) = tuple(meta_in.shape[-2:]), tuple(meta_out.shape[-2:])
        if h * w >= conv.kernel_size[0] * conv.kernel_size[1]:
            continue
        parent, _, name = node.target.rpartition(".")
        setattr(traced.get_submodule(parent) if parent else traced, name, DenseConv(conv, (h, w), (ho, wo)))
        replaced += 1
    return replaced


@contextlib.contextmanager
def inference_model(model: torch.nn.Module, device: torch.device, input_shape: tuple[int, ...] | None = None):
    """The model to run for evaluation, in eval mode; the caller's model is left as it was.

    CPU: a traced copy with BatchNorm folded into channels_last convolutions (oneDNN's
    fast layout), and, when `input_shape` (C, H, W) is given, convolutions on maps
    smaller than their kernels run as matrix products (the copy then only accepts that
    size); a model that does not trace runs as is. CUDA: the model itself
    (channels_last already, prepare_model). Measured in benchmarks/eval_throughput.py."""
    was_training = model.training
    model.eval()
    try:
        folded = fold_batchnorm(model) if device.type == "cpu" else None
        if folded is not None and input_shape is not None:
            densify_small_convs(folded, tuple(input_shape))
        yield model if folded is None else folded
    finally:
        model.train(was_training)
