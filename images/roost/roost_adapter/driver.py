"""Training and prediction with aviary-models 1.2.1 (CompRhys/aviary), shared by the Roost and
Wrenformer adapters.

This file is kept byte-identical in ``images/roost/roost_adapter/driver.py`` and
``images/wrenformer/wrenformer_adapter/driver.py`` (each model folder is its own Docker build
context and cannot import the other's code); ``tests/unit/test_shared_model_files.py`` checks
that the copies agree. Edit one, then copy it over the other.

What comes from aviary, unchanged: the model classes (``aviary.roost.model.Roost``,
``aviary.wrenformer.model.Wrenformer``, built by the adapters), the loss functions
(``aviary.utils.initialize_losses``: ``L1Loss``/``MSELoss``, or with ``robust`` the
heteroskedastic ``robust_l1_loss``/``robust_l2_loss`` whose second output is a per-sample
log standard deviation; ``CrossEntropyLoss``, or ``NLLLoss`` on aviary's sampled softmax for
robust classification), the target ``Normalizer`` (mean and standard deviation of the training
targets, ``aviary.utils.init_normalizers``) and the training step, ``BaseModelClass.evaluate``
(``action="train"``: one pass over the training loader with an optimizer step per batch;
``action="evaluate"``: the same loss on the validation loader without gradients).

What mateval does instead of aviary's ``train_ensemble``/``fit``: the validation set is the one
handed to :meth:`AviaryAdapter.fit` (never a random split of the training set); every epoch is
reported through ``on_epoch_end``; no checkpoint files, TensorBoard or wandb logs are written;
one model, not an ensemble; the weights after the last epoch are kept (as aviary's ``fit`` does).
"""

from __future__ import annotations

import abc
import math
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

# pymatgen's protostructure code calls its own deprecated gcd once per structure
warnings.filterwarnings("ignore", message="gcd is deprecated")
# aviary's evaluate() converts the (grad-carrying) batch error to a float for its MAE log
warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")

from aviary.core import sampled_softmax  # noqa: E402
from aviary.utils import init_normalizers, initialize_losses  # noqa: E402

from runner.contract import EpochCallback, EpochRecord, ModelAdapter, Sample, TaskSpec  # noqa: E402

#: the one target an adapter trains (aviary's task_dict key)
TARGET = "target"


def check_targets(samples: Sequence[Sample], task: TaskSpec, split: str) -> np.ndarray:
    """The targets of ``samples`` as float64 ``(n,)`` (regression) or int64 0/1 (classification).

    Raises:
        ValueError: a sample without a target, with a non-finite target or (classification) a
            label other than 0 or 1, naming the sample id and the split.
    """
    values = []
    for sample in samples:
        y = sample.target
        if y is None or isinstance(y, (dict, list, tuple, np.ndarray)) and np.ndim(y) != 0:
            raise ValueError(f"{split} sample {sample.id!r}: target {y!r} is not a number ({task.name} needs one "
                             f"{task.task_type} target per sample)")
        y = float(y)
        if not math.isfinite(y):
            raise ValueError(f"{split} sample {sample.id!r}: target {y} is not finite")
        if task.task_type == "classification" and y not in (0.0, 1.0):
            raise ValueError(f"{split} sample {sample.id!r}: class label {y} is not 0 or 1")
        values.append(y)
    if task.task_type == "classification":
        return np.asarray(values, dtype=np.int64)
    return np.asarray(values, dtype=np.float64)


def check_structures(samples: Sequence[Sample], split: str) -> None:
    """Raises ``ValueError`` naming the sample id when a sample carries no pymatgen ``Structure``
    (both models read the composition, Wrenformer also the symmetry, from it)."""
    for sample in samples:
        if not hasattr(sample.structure, "composition") or len(sample.structure) == 0:
            raise ValueError(f"{split} sample {sample.id!r}: structure is {type(sample.structure).__name__}, "
                             "not a non-empty pymatgen Structure")


class AviaryAdapter(ModelAdapter):
    """Base of the Roost and Wrenformer adapters: aviary's losses, normalizer and training step
    on mateval's train/validation/test split.

    Subclasses build the aviary model (:meth:`_build_model`), its data loader
    (:meth:`_loader`) and the plain tensors of one batch (:meth:`forward_inputs`).

    Hyperparameters read here: ``robust`` (bool), ``loss`` (``L1``/``L2``, regression),
    ``epochs``, ``batch_size``; the optimizer and scheduler come from :meth:`_optimizer`.

    Units: predictions are in the task's unit (regression) or the probability of class 1
    (classification); ``EpochRecord`` losses are aviary's loss on normalized targets (regression) or
    the cross-entropy (classification), batch means averaged over the epoch.

    Raises:
        ValueError: from ``__init__`` for a task type other than regression or classification;
            from ``fit``/``predict`` for bad samples (see :func:`check_targets`,
            :func:`check_structures`) or an empty training set.
    """

    model_name = "aviary"

    def __init__(self, task: TaskSpec, hyperparameters: Mapping[str, Any], device: Any, seed: int):
        super().__init__(task, hyperparameters, device, seed)
        if task.task_type not in ("regression", "classification"):
            raise ValueError(f"{self.model_name}: task type {task.task_type!r} of task {task.name!r} is not "
                             "supported (regression, classification)")
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.task_dict = {TARGET: task.task_type}
        self.n_targets = [1 if task.task_type == "regression" else 2]
        loss_name = self.hyperparameters.get("loss", "L1") if task.task_type == "regression" else "CSE"
        self.loss_name = loss_name
        self.robust = bool(self.hyperparameters["robust"])
        self.loss_dict = initialize_losses(self.task_dict, {TARGET: loss_name}, self.robust)
        self.normalizer_dict = init_normalizers(self.task_dict, self.device)
        self.model: nn.Module | None = None

    # ------------------------------------------------------------------ subclass hooks
    @abc.abstractmethod
    def _build_model(self) -> nn.Module:
        """The aviary model (a ``BaseModelClass``) for ``self.task_dict`` / ``self.n_targets``."""

    @abc.abstractmethod
    def _loader(self, samples: Sequence[Sample], targets: np.ndarray | None, shuffle: bool, split: str):
        """An iterable of aviary batches ``(inputs, targets, *ids)`` over ``samples`` in order
        (``shuffle=False``) or shuffled with the run's seeded generators."""

    @abc.abstractmethod
    def _optimizer(self, model: nn.Module) -> tuple[torch.optim.Optimizer, Any]:
        """The optimizer and learning-rate scheduler (stepped once per epoch)."""

    # ------------------------------------------------------------------ contract
    def _aviary_model(self) -> nn.Module:
        """The aviary model, built on first use."""
        if self.model is None:
            self.model = self._build_model()
        return self.model

    @property
    def network(self) -> nn.Module:
        return self._aviary_model()

    def fit(self, train: Sequence[Sample], val: Sequence[Sample], on_epoch_end: EpochCallback) -> None:
        if not train:
            raise ValueError(f"{self.model_name}: the training set is empty")
        check_structures(train, "train")
        check_structures(val, "val")
        y_train = check_targets(train, self.task, "train")
        y_val = check_targets(val, self.task, "val") if val else None
        normalizer = self.normalizer_dict[TARGET]
        if normalizer is not None:
            normalizer.fit(torch.as_tensor(y_train, dtype=torch.float32))
            if not float(normalizer.std) > 0:  # one sample, or identical targets: keep the mean, unit scale
                normalizer.std = torch.tensor(1.0)
        model = self._aviary_model()
        train_loader = self._loader(train, y_train, shuffle=True, split="train")
        val_loader = self._loader(val, y_val, shuffle=False, split="val") if val else None
        optimizer, scheduler = self._optimizer(model)
        for epoch in range(1, int(self.hyperparameters["epochs"]) + 1):
            train_metrics = model.evaluate(train_loader, self.loss_dict, optimizer, self.normalizer_dict,
                                           action="train")[TARGET]
            val_metrics = None
            if val_loader is not None:
                with torch.no_grad():
                    val_metrics = model.evaluate(val_loader, self.loss_dict, None, self.normalizer_dict,
                                                 action="evaluate")[TARGET]
            lr = float(optimizer.param_groups[0]["lr"])
            scheduler.step()
            model.epoch += 1
            extra = {f"train_{k.lower()}": float(v) for k, v in train_metrics.items() if k != "Loss"}
            if val_metrics is not None:
                extra.update({f"val_{k.lower()}": float(v) for k, v in val_metrics.items() if k != "Loss"})
            on_epoch_end(EpochRecord(epoch=epoch, train_loss=float(train_metrics["Loss"]),
                                     val_loss=None if val_metrics is None else float(val_metrics["Loss"]),
                                     lr=lr, loss_name=self._loss_description(),
                                     extra={k: v for k, v in extra.items() if math.isfinite(v)}))

    def _loss_description(self) -> str:
        if self.task.task_type == "classification":
            return "nll of sampled softmax (robust)" if self.robust else "cross-entropy"
        kind = {"L1": "l1", "L2": "mse"}[self.loss_name]
        return f"robust {kind} (normalized targets)" if self.robust else f"{kind} (normalized targets)"

    @torch.no_grad()
    def predict(self, samples: Sequence[Sample]) -> np.ndarray:
        """Regression: ``(n,)`` float64 in the task's unit (the mean output; with ``robust`` the
        second output, the aleatoric log standard deviation, is dropped). Classification:
        ``(n,)`` float64, the probability of class 1 (softmax; with ``robust``, aviary's sampled
        softmax over the predicted logit uncertainty, as in ``aviary.utils.results_multitask``)."""
        if self.model is None:
            raise RuntimeError(f"{self.model_name}: predict() called before fit()")
        check_structures(samples, "predict")
        if not samples:
            return np.zeros(0, dtype=np.float64)
        model = self.model
        model.eval()
        outputs = []
        for inputs, *_ in self._loader(samples, None, shuffle=False, split="predict"):
            inputs = [t.to(self.device) if hasattr(t, "to") else t for t in inputs]
            outputs.append(model(*inputs)[0])
        out = torch.cat(outputs, dim=0)
        if self.task.task_type == "regression":
            mean = out[:, 0] if self.robust else out.squeeze(1)
            return self.normalizer_dict[TARGET].denorm(mean).double().cpu().numpy().reshape(-1)
        if self.robust:
            pre_logits, log_std = out.chunk(2, dim=1)
            probabilities = sampled_softmax(pre_logits, log_std)
        else:
            probabilities = torch.softmax(out, dim=1)
        return probabilities[:, 1].double().cpu().numpy().clip(0.0, 1.0)

    def save_model(self, path: Path) -> Path | None:
        """aviary's checkpoint format (``model_params``, ``state_dict``, ``normalizer_dict``, as
        ``BaseModelClass.fit`` writes it), loadable with ``aviary.utils.initialize_model(...,
        fine_tune=path)``."""
        if self.model is None:
            return None
        normalizer = self.normalizer_dict[TARGET]
        torch.save({"model_params": self.model.model_params, "state_dict": self.model.state_dict(),
                    "epoch": self.model.epoch,
                    "normalizer_dict": {TARGET: normalizer.state_dict() if normalizer is not None else None}}, path)
        return path
