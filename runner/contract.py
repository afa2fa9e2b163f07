"""The model contract: what a model folder under ``images/<model>/`` provides to the runner.

This module is the one place the contract is defined; ``images/README.md`` walks through it with
a worked example.

Division of labour
------------------
**mateval** owns everything that must be identical across models for a fair comparison: reading
the dataset, the train/validation/test split, seeding, resource telemetry, parameter and FLOP
counting, scoring, and the result files. The **model** owns building its network, training it
and predicting. A model never sees the test targets: they are not among its inputs (its process,
its environment or container hold only ``inputs/``), :meth:`ModelAdapter.predict` receives test
samples whose ``target`` is ``None``, and the metrics are computed in another process.

A model folder contains
-----------------------
- ``model.yaml``: the manifest, validated against ``runner/schemas/model.schema.json``
  (``additionalProperties: false``: a misspelt field is an error naming the file and field).
  ``entry_point`` is ``"<module>:<class>"``, importable with the model folder on ``sys.path``.
- a Python package with a subclass of :class:`ModelAdapter`.
- later, a ``Dockerfile`` (see ``images/README.md``).

Life cycle of one run
---------------------
The host prepares the run (:mod:`runner.prepare`): it loads the dataset and writes the model's
inputs into the run directory; the test samples are written without their targets. The model
stage (:mod:`runner.run`, in the model's environment or container) then does:

1. ``adapter = EntryPointClass(task, hyperparameters, device, seed)``
2. ``adapter.fit(train, val, on_epoch_end)`` inside the telemetry phase ``train``; the adapter
   calls ``on_epoch_end(EpochRecord(...))`` once per epoch (the runner logs progress and keeps the
   loss history).
3. The task type's model call (:mod:`runner.tasks`) in its telemetry phase: ``adapter.predict(test)``
   (``predict``) for regression, classification, spectra and potential, ``adapter.generate(n)``
   (``generate``) for generation. The runner checks and writes what it returns.
4. ``adapter.network`` and ``adapter.forward_inputs(batch)`` are used to count parameters and FLOPs.

The scoring stage (:mod:`runner.score`) runs afterwards in mateval's own environment, in another
process: it reads the model's output, scores it against the held-out targets with :mod:`metrics`
and completes the result. Nothing a model does in its own process changes its score.

Progress: the runner logs every epoch with the time elapsed and an estimate of what remains; a
model wraps its own long loops (graph building, sampling) in :func:`runner.progress.track` or a
:class:`runner.progress.Progress`, so that nothing is silent for more than a few seconds.

Exceptions raised by the adapter are caught by the runner and recorded as ``status: failed``
(``oom`` for ``MemoryError`` and ``torch.cuda.OutOfMemoryError``) with the traceback and log tail.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np

TaskType = Literal["regression", "classification", "generation", "spectra", "potential"]


@dataclass(frozen=True)
class TaskSpec:
    """What a model is asked to learn.

    Attributes:
        name: task identifier, e.g. ``"perov5_heat_ref"``.
        task_type: ``"regression"`` (one real target per crystal), ``"classification"``
            (binary label per crystal, 1 = positive class), ``"generation"`` (learn the
            distribution of the training crystals and sample new ones), ``"spectra"`` (one
            vector per crystal on a fixed grid, e.g. a phonon density of states) or
            ``"potential"`` (an interatomic potential: the total energy and the forces of each
            structure, see :class:`Sample`).
        target: name of the target property in the dataset's own terms, e.g. ``"heat_ref"``
            (``"structure"`` for generation, ``"energy_forces"`` for potential).
        unit: unit of the target (``"eV"``; for potential ``"eV"``: energies in eV, forces in
            eV/Å) or ``None`` for class labels and generation.
        positive_class: for classification, a human-readable definition of label 1
            (e.g. ``"ind_gap > 0 eV"``); ``None`` otherwise.
        max_atoms: for generation, the largest number of atoms per cell in the dataset (a model
            may size its decoders with it); ``None`` otherwise.
        elements: for generation and potential, the chemical symbols occurring in the training
            split, sorted by atomic number; ``None`` otherwise.
        grid: for spectra, the points the spectrum is given on (e.g. 51 frequencies, 0 to 1000
            cm⁻¹); ``None`` otherwise.
        grid_unit: unit of ``grid`` (``"cm^-1"``); ``None`` otherwise.
        periodic: ``True`` (crystals: every :attr:`Sample.structure` is a periodic
            ``pymatgen.core.Structure``) or ``False`` (molecules, e.g. QM9: every structure is a
            non-periodic ``pymatgen.core.Molecule``, Cartesian coordinates in Å). A model takes
            molecules only when its ``model.yaml`` lists ``structures: [..., molecule]``.
        extensive: regression: ``True`` when the target is a sum over atoms (a total energy such
            as QM9's U0), so that a model may read out with a sum and the baseline is the
            per-element linear fit; ``False`` (an intensive property, the default) otherwise.
    """

    name: str
    task_type: TaskType
    target: str
    unit: str | None
    positive_class: str | None = None
    max_atoms: int | None = None
    elements: tuple[str, ...] | None = None
    grid: tuple[float, ...] | None = None
    grid_unit: str | None = None
    periodic: bool = True
    extensive: bool = False


@dataclass(frozen=True)
class Sample:
    """One crystal with its label.

    Attributes:
        id: dataset-stable identifier (for perov_5 the CMR ``material_id``), used in
            ``predictions.csv``.
        structure: a ``pymatgen.core.Structure`` (lattice in Å, fractional coordinates;
            periodic), or for a task with ``TaskSpec.periodic = False`` a
            ``pymatgen.core.Molecule`` (Cartesian coordinates in Å, no lattice).
        target: regression: the property in ``TaskSpec.unit``; classification: 0 or 1;
            spectra: a float ``np.ndarray`` of shape ``(len(TaskSpec.grid),)``; potential: a
            dict ``{"energy": float, "forces": np.ndarray}``, the total energy of the cell in eV
            (not per atom) and the forces on its atoms, float64 of shape ``(n_atoms, 3)`` in eV/Å,
            in the order of the structure's sites; ``None`` for samples handed to
            :meth:`ModelAdapter.predict` and for generation.
        info: further facts about the sample that are not targets and may be given to the model,
            e.g. ``{"config_type": "Vacancy"}`` (mlearn's configuration group); empty by default.
    """

    id: str
    structure: Any
    target: Any
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EpochRecord:
    """Loss history entry reported by a model once per training epoch.

    Attributes:
        epoch: 1-based epoch number.
        train_loss: mean training loss over the epoch, in the model's loss units (say which in
            ``loss_name``).
        val_loss: validation loss after the epoch, same units, or ``None`` without validation data.
        lr: learning rate at the end of the epoch, or ``None``.
        loss_name: e.g. ``"mse (standardized)"`` or ``"nll"``.
        extra: further per-epoch numbers (finite floats) the model wants kept in ``history``.
    """

    epoch: int
    train_loss: float
    val_loss: float | None = None
    lr: float | None = None
    loss_name: str = "loss"
    extra: Mapping[str, float] = field(default_factory=dict)


EpochCallback = Callable[[EpochRecord], None]


class ModelAdapter(abc.ABC):
    """Base class of every model's entry point (see the module docstring for the life cycle).

    Args:
        task: the task to learn (:class:`TaskSpec`).
        hyperparameters: the effective hyperparameters: ``model.yaml``'s ``hyperparameters``
            (paper defaults), then its ``bench_hyperparameters`` when the run is a bench run,
            then command-line overrides. Keys are exactly those declared in ``model.yaml``.
        device: a ``torch.device`` chosen by the runner (``cuda`` when available, else ``cpu``).
        seed: the run's seed; the runner has already seeded ``random``, ``numpy`` and ``torch``.

    Raises:
        ValueError: from ``__init__`` when the task type is not supported or hyperparameters
            contradict each other (name them in the message). Types and ranges of single
            hyperparameters are declared in ``model.yaml``'s ``hyperparameter_types`` and checked
            by the runner before the adapter starts.
    """

    def __init__(self, task: TaskSpec, hyperparameters: Mapping[str, Any], device: Any, seed: int):
        self.task = task
        self.hyperparameters = dict(hyperparameters)
        self.device = device
        self.seed = seed

    @property
    @abc.abstractmethod
    def network(self) -> Any:
        """The ``torch.nn.Module`` whose parameters are counted and whose forward pass is profiled.

        Must exist once ``fit`` has returned (it may also exist earlier).
        """

    @abc.abstractmethod
    def fit(self, train: Sequence[Sample], val: Sequence[Sample], on_epoch_end: EpochCallback) -> None:
        """Train on ``train``, using ``val`` for monitoring or model selection only.

        Args:
            train: training samples, targets set.
            val: validation samples, targets set (may be empty).
            on_epoch_end: call once per epoch with an :class:`EpochRecord`.
        """

    def predict(self, samples: Sequence[Sample]) -> np.ndarray | list:
        """Predict for ``samples`` (their ``target`` is ``None``). Required for regression,
        classification, spectra and potential models.

        Returns:
            ``np.ndarray``, float64. Regression: shape ``(n_samples,)``, the property in the
            task's unit. Classification: shape ``(n_samples,)``, the probability of the positive
            class, in [0, 1]. Spectra: shape ``(n_samples, len(TaskSpec.grid))``.
            Potential: a list, one entry per sample in the same order, each a dict
            ``{"energy": float, "forces": array-like of shape (n_atoms, 3)}``: the total energy
            of the cell in eV and the forces in eV/Å, atoms in the order of the structure's sites.
            The runner checks types, shapes and finiteness and names the sample on error.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement predict()")

    def generate(self, n: int) -> list:
        """Sample ``n`` new crystals after :meth:`fit` on a generation task. Required for
        generation models.

        Returns:
            a list of length ``n``: a ``pymatgen.core.Structure`` for each crystal the model
            produced (lattice in Å; Cartesian distances are what the metrics check), or ``None``
            where the model could not produce a structure for that request (counted against the
            success rate; never drop entries).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement generate()")

    def save_model(self, path: Path) -> Path | None:
        """Optional: write the trained model to ``path`` (a file the runner names,
        ``RUN_DIR/model/<model name>.model``) in the package's own format, so that it can be
        reused (e.g. as the ``foundation_model`` of a fine-tuning run) or loaded by the package's
        tools. Return the path written, or ``None`` when there is nothing to save (the default).
        Called after the predictions are written; an error here is recorded as a note and does
        not fail the run."""
        return None

    @abc.abstractmethod
    def forward_inputs(self, samples: Sequence[Sample]) -> tuple:
        """Positional arguments such that ``self.network(*args)`` is one forward pass over
        ``samples`` as a single batch, on ``self.device``. Used only for FLOP counting.

        For a generative model ``network`` is the module trained on each batch (e.g. a VAE with
        its score network) and ``forward_inputs`` the inputs of one training forward pass."""
