"""Model size and cost: parameters and FLOPs.

- ``params``: ``sum(p.numel() for p in network.parameters())``, counted once. (The reference table
  summed it over every batch of the training set; we do not.)
- FLOPs with :class:`torch.utils.flop_counter.FlopCounterMode` on a probe batch of the training set
  (``probe_batch_size`` samples): forward FLOPs per sample, forward FLOPs per pass over the training
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
        import thop

        clone = copy.deepcopy(network).eval()
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            import torch

            with torch.no_grad():
                macs, _ = thop.profile(clone, inputs=inputs, verbose=False)
        return {"macs_per_sample": int(round(float(macs) / n_probe)), "probe_batch_size": int(n_probe),
                "note": THOP_NOTE}
    except Exception as exc:  # thop is a comparison figure only; never fail a run for it
        return {"error": f"{type(exc).__name__}: {exc}", "note": THOP_NOTE}


def profile_model(adapter: Any, train: Sequence[Any], probe_batch_size: int = 32) -> dict[str, Any]:
    """The ``model_stats`` block of ``result.json`` for a fitted model adapter.

    Never raises: a failure is recorded in ``model_stats.error`` (profiling must not cost a run).
    """
    stats: dict[str, Any] = {"params": None, "trainable_params": None, "flops": None, "thop": None, "error": None}
    try:
        network = adapter.network
        stats["params"], stats["trainable_params"] = count_parameters(network)
        probe = list(train[:probe_batch_size])
        inputs = adapter.forward_inputs(probe)
        stats["flops"] = count_flops(network, inputs, len(probe), len(train))
        stats["thop"] = thop_macs(network, inputs, len(probe))
    except Exception as exc:
        stats["error"] = f"{type(exc).__name__}: {exc}"
    return stats
