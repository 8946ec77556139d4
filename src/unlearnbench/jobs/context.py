"""The data, device and precision a job runs on: `DeviceContext` (the set-up every model
job shares) and `Context`, the main benchmark's jobs' (the dataset's splits).
U-LiRA's `ShadowContext` (the attack pool) is jobs/ulira.py's."""

from __future__ import annotations

import torch

from .. import data, evaluate, io, models, runtime
from ..batches import Split, make_splits_on_device


class DeviceContext:
    """The set-up every model job shares: the dataset's spec, the device, the precision
    resolved for it, and the process's threads and determinism (runtime.setup)."""

    def __init__(self, dataset: str, device="auto", precision="fp32", threads=None):
        self.dataset = dataset
        self.spec = data.get_spec(dataset)
        self.device = runtime.select_device(device)
        self.precision = runtime.resolve_precision(precision, self.device)
        runtime.setup(threads, self.device)

    def conditions(self) -> dict:
        """What a metrics JSON records of the job's set-up: the device type and the
        precision that `device` and `precision: auto` resolved to."""
        return {"device": self.device.type, "precision": self.precision}


class Context(DeviceContext):
    """Everything a model job needs: the dataset's splits on the device, the spec, the
    device and the precision. Built once per job."""

    def __init__(self, dataset: str, splits_path, data_dir="data", download=False, device="auto",
                 precision="fp32", threads=None):
        super().__init__(dataset, device, precision, threads)
        indices = data.read_splits(splits_path)
        pool = data.load_pool(dataset, data_dir, download)
        if max(int(v.max()) for v in indices.values() if len(v)) >= len(pool.labels):
            raise io.CorruptFileError(f"{splits_path} indexes past the {len(pool.labels)} examples of {dataset}")
        self.splits: dict[str, Split] = make_splits_on_device(
            pool.images, pool.labels, {k: indices[k] for k in data.SPLIT_NAMES}, self.spec, self.device)

    def model(self, name: str, checkpoint) -> torch.nn.Module:
        net = models.build(name, self.spec.num_classes, self.spec.image_size)
        io.load_state(checkpoint, net)
        return runtime.prepare_model(net, self.device)

    def training_split(self, kind: str) -> Split:
        """original: retain + forget; retrained: retain only."""
        if kind == "retrained":
            return self.splits["retain"]
        r, f = self.splits["retain"], self.splits["forget"]
        return Split(torch.cat([r.images, f.images]), torch.cat([r.labels, f.labels]), self.spec)

    def evaluate(self, net) -> dict:
        return evaluate.evaluate(net, self.splits, self.precision)
