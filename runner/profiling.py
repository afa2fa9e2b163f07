"""Model size and cost: parameters and FLOPs.

- ``params``: ``sum(p.numel() for p in network.parameters())``, counted once. (The reference table
  summed it over every batch of the training set; we do not.)
- FLOPs with :class:`torch.utils.flop_counter.FlopCounterMode` on a probe batch of the training set
  (the first ``probe_batch_size`` samples, fewer when they would exceed :data:`MAX_PROBE_ATOMS`
  atoms: :func:`probe_batch`): forward FLOPs per sample, forward FLOPs per pass over the training
  set and training FLOPs per epoch (forward + backward), both extrapolated linearly from the probe
  batch to ``n_train`` samples. FlopCounterMode counts matrix multiplications and convolutions
  (aten mm/bmm/addmm/matmul/conv/scaled-dot-product attention); it does **not** count elementwise
  operations, normalisations, activations, or the gather/scatter (index_select, scatter_add,
  index_add) of graph message passing, so graph models are under-counted by those.
- thop's MACs (``thop.profile``) for comparison with the reference table. thop counts only through
  hooks on known ``nn.Module`` types: it misses functional calls (``torch.matmul``, ``F.linear``)
  and layers it does not know (subclassed or custom modules, e.g. PyG ``MessagePassing``), and it
  is run on a deep copy because it adds buffers to modules.
"""

from __future__ import annotations

import copy
import io
import warnings
from contextlib import redirect_stdout
from typing import Any, Sequence

NOT_COUNTED = ("elementwise operations, normalisation layers, activations and the gather/scatter "
               "message aggregation of graph networks (index_select, scatter_add, index_add) are not counted "
               "by torch.utils.flop_counter.FlopCounterMode; FLOPs are those of matrix multiplications and "
               "convolutions only")
#: atoms at most in the FLOP-counting probe batch (beyond its first sample): the count is per sample
#: and extrapolated linearly, so a larger batch adds cost, not information. 32 perovskites (5 atoms)
#: or MP-20 crystals (at most 20) fit; of mlearn's 64-atom cells it takes 4, where 32 cost a MACE run
#: 5.9 s of a 30 s bench (bench/potential_harness_cost.py).
MAX_PROBE_ATOMS = 256


def probe_batch(train: Sequence[Any], probe_batch_size: int, max_atoms: int = MAX_PROBE_ATOMS) -> list[Any]:
    """The first ``probe_batch_size`` samples of ``train``, cut after the last one that keeps the
    total number of atoms (``len(sample.structure)``) within ``max_atoms``; at least one sample.
    Samples without a structure count as one atom."""
    out: list[Any] = []
    atoms = 0
    for sample in list(train[:probe_batch_size]):
        structure = getattr(sample, "structure", None)
        n = len(structure) if structure is not None else 1
        if out and atoms + n > max_atoms:
            break
        out.append(sample)
        atoms += n
    return out


THOP_NOTE = ("thop counts MACs through hooks on known nn.Module types only: functional matmuls and "
             "subclassed or custom layers (e.g. torch_geometric MessagePassing) are missed")


def count_parameters(network: Any) -> tuple[int, int]:
    """``(all, trainable)`` parameter counts of a ``torch.nn.Module``, each parameter counted once."""
    params = list(network.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _first_tensor_output(output: Any):
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            found = _first_tensor_output(item)
            if found is not None:
                return found
    if isinstance(output, dict):
        for item in output.values():
            found = _first_tensor_output(item)
            if found is not None:
                return found
    return None


def count_flops(network: Any, inputs: tuple, n_probe: int, n_train: int) -> dict[str, Any]:
    """FLOPs of one forward and one forward+backward pass over ``inputs`` (a batch of ``n_probe``
    samples), extrapolated to ``n_train`` samples.

    Returns:
        ``{"forward_per_sample", "forward_per_epoch", "train_per_epoch", "probe_batch_size",
        "method", "not_counted"}`` (FLOP counts as ints; a multiply-add is 2 FLOPs).

    Raises:
        ValueError: ``n_probe`` is not positive.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    if n_probe <= 0:
        raise ValueError(f"probe batch must hold at least one sample, got {n_probe}")
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            network(*inputs)
        forward = counter.get_total_flops()
        by_module = _modules_of(network, counter)
        network.train()
        with FlopCounterMode(display=False) as counter:
            output = _first_tensor_output(network(*inputs))
            if output is not None and output.requires_grad:
                output.float().sum().backward()
        train = counter.get_total_flops()
        network.zero_grad(set_to_none=True)
    finally:
        network.train(was_training)
    per_sample = forward / n_probe
    _LAST_PASS.update(flop_counter=(network, inputs, by_module))
    return {
        "forward_per_sample": int(round(per_sample)),
        "forward_per_epoch": int(round(per_sample * n_train)),
        "train_per_epoch": int(round(train / n_probe * n_train)),
        "probe_batch_size": int(n_probe),
        "method": "torch.utils.flop_counter.FlopCounterMode on a probe batch of the training set, "
                  "extrapolated linearly to the training-set size",
        "not_counted": NOT_COUNTED,
    }


def thop_macs(network: Any, inputs: tuple, n_probe: int) -> dict[str, Any]:
    """thop's MAC count per sample on a deep copy of ``network``; ``{"error": ...}`` if thop fails."""
    try:
        by_module = _thop_by_module(network, inputs)
        _LAST_PASS.update(thop=(network, inputs, by_module))
        macs = by_module[""]
        return {"macs_per_sample": int(round(float(macs) / n_probe)), "probe_batch_size": int(n_probe),
                "note": THOP_NOTE}
    except Exception as exc:  # thop is a comparison figure only; never fail a run for it
        return {"error": f"{type(exc).__name__}: {exc}", "note": THOP_NOTE}


#: the per-module counts of the last :func:`count_flops` / :func:`thop_macs` pass with the network
#: and the inputs they were counted on (identity, not equality; cleared by :func:`profile_model`), so that :func:`compare_counters` reuses them instead of
#: running both counters again on the same probe batch
_LAST_PASS: dict[str, tuple[Any, tuple, dict[str, float]]] = {}


def _reuse(kind: str, network: Any, inputs: tuple) -> dict[str, float] | None:
    entry = _LAST_PASS.get(kind)
    if entry is not None and entry[0] is network and entry[1] is inputs:
        return entry[2]
    return None


def _flop_counter_by_module(network: Any, inputs: tuple) -> dict[str, float]:
    """FLOPs of one forward pass per module path (``""``: the whole network; ``"a.lin"``: the
    submodule ``network.a.lin``), each including its submodules, from
    ``FlopCounterMode.get_flop_counts()`` (whose keys carry the root's class name as prefix)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        network(*inputs)
    return _modules_of(network, counter)


def _modules_of(network: Any, counter: Any) -> dict[str, float]:
    """The per-module-path FLOPs of a finished ``FlopCounterMode`` pass (see
    :func:`_flop_counter_by_module`)."""
    root = type(network).__name__
    out: dict[str, float] = {}
    for key, ops in counter.get_flop_counts().items():
        if key == "Global":
            continue
        name = "" if key == root else key[len(root) + 1:] if key.startswith(root + ".") else key
        out[name] = float(sum(ops.values()))
    return out


def _thop_by_module(network: Any, inputs: tuple) -> dict[str, float]:
    """thop's MACs per module path (as :func:`_flop_counter_by_module`), from
    ``thop.profile(..., ret_layer_info=True)`` on a deep copy of ``network``."""
    import thop
    import torch

    clone = copy.deepcopy(network).eval()
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()), torch.no_grad():
        warnings.simplefilter("ignore")
        total, _, layers = thop.profile(clone, inputs=inputs, verbose=False, ret_layer_info=True)
    out = {"": float(total)}

    def walk(prefix: str, tree: dict) -> None:
        for name, (ops, _params, children) in tree.items():
            path = f"{prefix}.{name}" if prefix else name
            out[path] = float(ops)
            walk(path, children)

    walk("", layers)
    return out


def compare_counters(network: Any, inputs: tuple, n_probe: int) -> dict[str, Any]:
    """Explain the difference between thop's MACs and FlopCounterMode's FLOPs for one network,
    layer by layer, per sample of the probe batch (thop's MACs doubled: a multiply-add is 2 FLOPs).

    Every leaf module (one without submodules) falls in one group:

    - ``both``: counted by both counters (their FLOPs per layer type, from each counter; equal for
      ``nn.Linear`` and convolutions);
    - ``thop_only``: counted by thop alone: element-wise layers thop has a rule for (normalisation,
      pooling, some activations) that FlopCounterMode does not count;
    - ``flop_counter_only``: counted by FlopCounterMode alone: layer types thop has no hook for
      (custom or subclassed modules).

    and ``outside_leaf_modules`` is what FlopCounterMode counts in the forward code of modules
    themselves (functional ``torch.matmul``, ``einsum``, ``F.linear``, hand-written message passing),
    which thop cannot see. ``explanation`` says it in one paragraph.

    Called after :func:`count_flops` and :func:`thop_macs` on the same ``network`` and ``inputs``
    objects (as :func:`profile_model` does), it reuses their per-module counts: each counter runs
    once per run.

    Args:
        network: a ``torch.nn.Module``.
        inputs: the forward arguments of a probe batch of ``n_probe`` samples.
        n_probe: samples in the probe batch (> 0).

    Returns:
        ``{"flop_counter_per_sample", "thop_flops_per_sample", "both", "thop_only",
        "flop_counter_only", "outside_leaf_modules_per_sample", "explanation"}``; groups are
        lists of ``{"type", "layers", "flop_counter", "thop_flops"}`` (FLOPs per sample).

    Raises:
        ValueError: ``n_probe`` is not positive.
        ImportError: thop is not installed.
    """
    if n_probe <= 0:
        raise ValueError(f"probe batch must hold at least one sample, got {n_probe}")
    fcm = _reuse("flop_counter", network, inputs)  # the counts of count_flops' forward pass
    fcm = fcm if fcm is not None else _flop_counter_by_module(network, inputs)
    macs = _reuse("thop", network, inputs)  # the counts of thop_macs' pass
    macs = macs if macs is not None else _thop_by_module(network, inputs)
    groups: dict[str, dict[str, dict[str, float]]] = {"both": {}, "thop_only": {}, "flop_counter_only": {}}
    in_leaves = 0.0
    for name, module in network.named_modules():
        if not name or any(True for _ in module.children()):
            continue
        f, t = fcm.get(name, 0.0), 2.0 * macs.get(name, 0.0)
        in_leaves += f
        group = "both" if f > 0 and t > 0 else "thop_only" if t > 0 else "flop_counter_only" if f > 0 else None
        if group:
            row = groups[group].setdefault(type(module).__name__, {"layers": 0, "flop_counter": 0.0, "thop_flops": 0.0})
            row["layers"] += 1
            row["flop_counter"] += f / n_probe
            row["thop_flops"] += t / n_probe
    total_f, total_t = fcm.get("", 0.0) / n_probe, 2.0 * macs.get("", 0.0) / n_probe
    outside = max(fcm.get("", 0.0) - in_leaves, 0.0) / n_probe

    def rows(group: str) -> list[dict[str, Any]]:
        return [{"type": kind, "layers": int(r["layers"]), "flop_counter": int(round(r["flop_counter"])),
                 "thop_flops": int(round(r["thop_flops"]))} for kind, r in sorted(groups[group].items())]

    def listing(group: str, key: str) -> str:
        return ", ".join(f"{r['type']} ×{r['layers']} ({_si(r[key])})" for r in rows(group))

    parts = [f"per sample, thop {_si(total_t)} (2 × {_si(total_t / 2, 'MAC')}) against FlopCounterMode "
             f"{_si(total_f)}"]
    if groups["both"]:
        parts.append(f"counted by both: {listing('both', 'flop_counter')} by FlopCounterMode, "
                     f"{_si(sum(r['thop_flops'] for r in rows('both')))} by thop")
    if groups["thop_only"]:
        parts.append(f"thop alone counts element-wise layers: {listing('thop_only', 'thop_flops')}")
    if groups["flop_counter_only"]:
        parts.append("FlopCounterMode alone counts layers thop has no rule for: "
                     f"{listing('flop_counter_only', 'flop_counter')}")
    if outside > 0:
        parts.append(f"FlopCounterMode alone counts {_si(outside)} of functional operations in the modules' own "
                     "forward code (matmul, einsum, F.linear), which thop cannot see")
    return {"flop_counter_per_sample": int(round(total_f)), "thop_flops_per_sample": int(round(total_t)),
            "both": rows("both"), "thop_only": rows("thop_only"), "flop_counter_only": rows("flop_counter_only"),
            "outside_leaf_modules_per_sample": int(round(outside)), "explanation": "; ".join(parts) + "."}


def _si(value: float, unit: str = "FLOP") -> str:
    """``value`` with an SI prefix: ``_si(54e6) == "54.0 MFLOP"``."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.1f} {prefix}{unit}"
    return f"{value:.0f} {unit}"


def profile_model(adapter: Any, train: Sequence[Any], probe_batch_size: int = 32) -> dict[str, Any]:
    """The ``model_stats`` block of ``result.json`` for a fitted model adapter.

    Never raises: a failure is recorded in ``model_stats.error`` (profiling must not cost a run).
    """
    stats: dict[str, Any] = {"params": None, "trainable_params": None, "flops": None, "thop": None, "error": None}
    try:
        network = adapter.network
        stats["params"], stats["trainable_params"] = count_parameters(network)
        probe = probe_batch(train, probe_batch_size)
        inputs = adapter.forward_inputs(probe)
        stats["flops"] = count_flops(network, inputs, len(probe), len(train))
        stats["thop"] = thop_macs(network, inputs, len(probe))
        if "error" not in stats["thop"]:
            try:
                stats["thop"]["comparison"] = compare_counters(network, inputs, len(probe))
            except Exception as exc:  # an explanation only; never fail a run for it
                stats["thop"]["comparison"] = {"error": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:
        stats["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        _LAST_PASS.clear()  # holds the network and the probe batch
    return stats
