"""The data, device and precision a job runs on: `DeviceContext` (the set-up every model
job shares) and `Context`, the main benchmark's jobs' (the dataset's splits).
U-LiRA's `ShadowContext` (the attack pool) is jobs/ulira.py's."""

from __future__ import annotations

import torch

import dataclasses

from .. import data, evaluate, io, models, runtime, scenario_data, scenarios
from ..batches import Split, make_splits_on_device


class DeviceContext:
    """The set-up every model job shares: the dataset's spec, the device, the precision
    resolved for it, and the process's threads and determinism (runtime.setup)."""

    def __init__(self, dataset: str, device="auto", precision="fp32", threads=None, image_size=None):
        self.dataset = dataset
        self.spec = data.get_spec(dataset, image_size)
        self.device = runtime.select_device(device)
        self.precision = runtime.resolve_precision(precision, self.device)
        self._precision_choice, self._precision_checked = precision, set()
        runtime.setup(threads, self.device)

    def fit_precision(self, net: torch.nn.Module) -> torch.nn.Module:
        """Under precision auto, fall back to fp32 (for the rest of the job) where bf16
        would corrupt this model's training here (runtime.bf16_cpu_hazards: resnet18 on
        16x16 inputs on a CPU); checked once per model class. Returns `net`."""
        if type(net) not in self._precision_checked:
            self._precision_checked.add(type(net))
            shape = self.input_shape
            precision = runtime.resolve_precision(self._precision_choice, self.device, net, shape)
            if precision != self.precision:
                print(f"precision auto: {precision} for {type(net).__name__} on {shape[1]}x{shape[2]} inputs "
                      "(bf16 on this CPU corrupts the weight gradient of stride-2 convolutions on 1x1 maps)")
                self.precision = precision
        return net

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the job's images."""
        return (3, self.spec.image_size, self.spec.image_size)

    def conditions(self) -> dict:
        """What a metrics JSON records of the job's set-up: the device type and the
        precision that `device` and `precision: auto` resolved to."""
        return {"device": self.device.type, "precision": self.precision}


class Context(DeviceContext):
    """Everything a model job needs: the dataset's splits on the device, the spec, the
    device and the precision. Built once per job. A scenario's split file
    (scenario_data.py) changes the pool's labels and images as it says, and adds its success
    metrics to every evaluation."""

    def __init__(self, dataset: str, splits_path, data_dir="data", download=False, device="auto",
                 precision="fp32", threads=None, image_size=None, verify_checksums=True):
        super().__init__(dataset, device, precision, threads, image_size)
        pool = data.load_pool(dataset, data_dir, download, self.spec.image_size, verify_checksums)
        # the four roles checked (data.check_splits); a scenario's other index arrays in range
        indices = data.read_splits(splits_path, pool.n_train, len(pool.labels))
        pool_indices = [v for k, v in indices.items() if k in scenario_data.INDEX_ARRAYS and len(v)]
        if max(int(v.max()) for v in pool_indices) >= len(pool.labels):
            raise io.CorruptFileError(f"{splits_path} indexes past the {len(pool.labels)} examples of {dataset}")
        images, labels, classes = scenario_data.apply_to_pool(pool.images, pool.labels, indices)
        if classes is not None:
            self.spec = dataclasses.replace(self.spec, num_classes=classes)
        self.scenario = indices
        self.splits: dict[str, Split] = make_splits_on_device(
            images, labels, {k: indices[k] for k in data.SPLIT_NAMES}, self.spec, self.device)
        self.success_splits = {}
        if len(indices.get("trigger_index", ())):  # the attack's test images: triggered, true labels
            test = torch.as_tensor(indices["test"], dtype=torch.int64)
            triggered = scenario_data.add_trigger(pool.images[test], scenario_data.info_of(indices)["params"]["patch"])
            self.success_splits = {"triggered": Split(triggered.to(self.device), labels[test].to(self.device),
                                                      self.spec)}

    def model(self, name: str, checkpoint) -> torch.nn.Module:
        net = models.build(name, self.spec.num_classes, self.spec.image_size)
        io.load_state(checkpoint, net)
        return self.fit_precision(runtime.prepare_model(net, self.device, self.input_shape))

    def training_split(self, kind: str) -> Split:
        """original: retain + forget; retrained: retain only."""
        if kind == "retrained":
            return self.splits["retain"]
        r, f = self.splits["retain"], self.splits["forget"]
        return Split(torch.cat([r.images, f.images]), torch.cat([r.labels, f.labels]), self.spec)

    def evaluate(self, net) -> dict:
        metrics = evaluate.evaluate(net, self.splits, self.precision)
        if scenario_data.info_of(self.scenario)["kind"] in scenarios.SUCCESS:
            metrics.update(self.success(net))
        return metrics

    def success(self, net) -> dict:
        """The scenario's success metrics (scenarios.SUCCESS) of `net` on the test set."""
        test = self.splits["test"]
        pred = evaluate.predict(net, test, precision=self.precision).logits.argmax(1).numpy()
        triggered = self.success_splits.get("triggered")
        trig_pred = (evaluate.predict(net, triggered, precision=self.precision).logits.argmax(1).numpy()
                     if triggered is not None else None)
        return scenario_data.success_metrics(self.scenario, pred, test.labels.cpu().numpy(), self.scenario["test"],
                                         trig_pred)
