"""Model registry: resnet18 (torchvision, ImageNet stem), tinyvit11m (timm), smallcnn.

`blocks(model)` lists the model's blocks (those CF-k and EU-k count from the end, as
the reference partitions them) and `classifier(model)` its final Linear layer.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .catalog import MODEL_NAMES, check_registry


class SmallCNN(nn.Module):
    """A small ResNet-shaped CNN that trains in seconds on a CPU.

    Named like torchvision's ResNet (conv1, bn1, layer1..3, fc) so methods that touch
    `conv1` or the classifier treat it the same way.
    """

    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._block(width, width)
        self.layer2 = self._block(width, width * 2)
        self.layer3 = self._block(width * 2, width * 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width * 4, num_classes)

    @staticmethod
    def _block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def _resnet18(num_classes: int, image_size: int) -> nn.Module:
    from torchvision.models import resnet18

    return resnet18(weights=None, num_classes=num_classes)


def _uncached_attention_biases(self, device: torch.device) -> torch.Tensor:
    return self.attention_biases[:, self.attention_bias_idxs]


def _tinyvit11m(num_classes: int, image_size: int) -> nn.Module:
    import timm
    from timm.models import tiny_vit

    # timm caches the attention-bias gather in eval mode. Several methods train in eval
    # mode (NG+, CF-k, SalUn's saliency...): the cached tensor's graph is freed after the
    # first backward, and its values go stale after a step (and a cached tensor holding a
    # graph cannot be deep-copied, e.g. into a teacher). The gather is cheap: never cache.
    # This is the one fix: the methods use plain model.eval() and copy.deepcopy.
    tiny_vit.Attention.get_attention_biases = _uncached_attention_biases
    return timm.create_model("tiny_vit_11m_224", pretrained=False, num_classes=num_classes,
                             drop_path_rate=0.1)


def _smallcnn(num_classes: int, image_size: int) -> nn.Module:
    return SmallCNN(num_classes)


BUILDERS: dict[str, Callable[[int, int], nn.Module]] = {
    "resnet18": _resnet18,
    "tinyvit11m": _tinyvit11m,
    "smallcnn": _smallcnn,
}
check_registry("model", BUILDERS, MODEL_NAMES)


def build(name: str, num_classes: int, image_size: int = 32, seed: int | None = None) -> nn.Module:
    """Build a freshly initialised model; with `seed`, the initialisation is reproducible."""
    if name not in BUILDERS:
        raise KeyError(f"unknown model '{name}'; valid: {', '.join(BUILDERS)}")
    if seed is None:
        return BUILDERS[name](num_classes, image_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BUILDERS[name](num_classes, image_size)


def blocks(model: nn.Module) -> list[nn.Module]:
    """The model's blocks, first to last: ResNet/SmallCNN `layer1..4`; for TinyViT the
    reference's 3 attention stages (its `BasicLayer`s, the convolutional stage is never a
    block), each with the patch merging that ends it in the reference. timm puts patch
    merging at the start of a stage instead, so on timm's model block i is
    stages[i].blocks + stages[i + 1].downsample (i = 1, 2) and block 3 is stages[3].blocks;
    timm's stages[1].downsample ends the reference's conv stage and is in no block.
    docs/reference.md, TinyViT row."""
    if hasattr(model, "stages"):  # timm TinyViT
        stages = model.stages
        return [nn.ModuleList([stages[1].blocks, stages[2].downsample]),
                nn.ModuleList([stages[2].blocks, stages[3].downsample]),
                stages[3].blocks]
    return [getattr(model, f"layer{i}") for i in range(1, 5) if hasattr(model, f"layer{i}")]


def classifier(model: nn.Module) -> nn.Linear:
    """The final classification layer: ResNet/SmallCNN `fc`; TinyViT's Linear `head.fc`
    alone (the reference's `head`; its LayerNorm before it is the reference's separate
    `norm_head`, not part of the classifier)."""
    if hasattr(model, "fc") and isinstance(model.fc, nn.Linear):
        return model.fc
    if hasattr(model, "head") and isinstance(getattr(model.head, "fc", None), nn.Linear):
        return model.head.fc
    raise TypeError(f"no classifier found on {type(model).__name__}")


def classifier_linear(model: nn.Module) -> nn.Linear:
    """The final nn.Linear itself (the same module as `classifier`)."""
    return classifier(model)
