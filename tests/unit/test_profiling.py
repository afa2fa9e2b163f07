"""runner.profiling: parameters, FLOPs (FlopCounterMode), thop's MACs and the layer-by-layer
explanation of where the two counters differ, on small real torch networks whose counts follow
by hand."""

import pytest
import torch
from torch import nn

from runner.profiling import NOT_COUNTED, compare_counters, count_flops, count_parameters, thop_macs


class Block(nn.Module):
    """Linear 4→8, ReLU, a functional matmul with an 8×8 weight, LayerNorm(8)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 8)
        self.weight = nn.Parameter(torch.randn(8, 8))
        self.norm = nn.LayerNorm(8)

    def forward(self, x):
        return self.norm(torch.relu(self.lin(x)) @ self.weight)


class MyLinear(nn.Linear):
    """A subclass: thop hooks exact types only, so it counts nothing here."""


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Sequential(nn.Linear(8, 2), nn.ReLU())
        self.custom = MyLinear(2, 3)

    def forward(self, x):
        return self.custom(self.head(self.block(x)))


def test_parameters_and_flops_by_hand():
    net, x = Net(), torch.randn(5, 4)
    assert count_parameters(net) == (4 * 8 + 8 + 64 + 16 + 8 * 2 + 2 + 2 * 3 + 3,) * 2
    flops = count_flops(net, (x,), n_probe=5, n_train=100)
    per_sample = 2 * (4 * 8 + 8 * 8 + 8 * 2 + 2 * 3)  # the three linears and the matmul, 2 FLOP per MAC
    assert flops["forward_per_sample"] == per_sample and flops["forward_per_epoch"] == per_sample * 100
    assert flops["not_counted"] == NOT_COUNTED
    with pytest.raises(ValueError, match="at least one sample"):
        count_flops(net, (x,), n_probe=0, n_train=1)


def test_the_counters_disagreement_is_explained_layer_by_layer():
    net, x = Net(), torch.randn(5, 4)
    comparison = compare_counters(net, (x,), n_probe=5)
    assert comparison["flop_counter_per_sample"] == 2 * (32 + 64 + 16 + 6)
    # thop: nn.Linear 4→8 and 8→2 (MACs), LayerNorm element-wise; not the subclass, not the matmul
    assert comparison["thop_flops_per_sample"] == 2 * (32 + 16) + comparison["thop_only"][0]["thop_flops"]
    assert comparison["thop_flops_per_sample"] == 2 * thop_macs(net, (x,), 5)["macs_per_sample"]
    assert comparison["both"] == [{"type": "Linear", "layers": 2, "flop_counter": 96, "thop_flops": 96}]
    assert [row["type"] for row in comparison["thop_only"]] == ["LayerNorm"]
    assert comparison["flop_counter_only"] == [{"type": "MyLinear", "layers": 1, "flop_counter": 12, "thop_flops": 0}]
    assert comparison["outside_leaf_modules_per_sample"] == 2 * 64  # the functional matmul
    # every FlopCounterMode FLOP is in one place
    assert comparison["flop_counter_per_sample"] == 96 + 12 + 128
    text = comparison["explanation"]
    assert "LayerNorm ×1" in text and "MyLinear ×1 (12 FLOP)" in text and "128 FLOP of functional operations" in text
    with pytest.raises(ValueError, match="at least one sample"):
        compare_counters(net, (x,), n_probe=0)


def test_profile_model_runs_each_counter_once_and_explains_the_same(monkeypatch):
    """profile_model's comparison reuses the per-module counts of count_flops and thop_macs on the
    same probe batch (one pass per counter), and gives what a separate comparison gives."""
    import runner.profiling as profiling

    net, x = Net(), torch.randn(5, 4)
    expected = compare_counters(net, (x,), n_probe=5)

    class Adapter:
        network = net

        def forward_inputs(self, samples):
            return (x,)

    calls = {"flop_counter": 0, "thop": 0}
    real_fcm, real_thop = profiling._flop_counter_by_module, profiling._thop_by_module

    def counting(kind, real):
        def wrapped(*args):
            calls[kind] += 1
            return real(*args)
        return wrapped

    monkeypatch.setattr(profiling, "_flop_counter_by_module", counting("flop_counter", real_fcm))
    monkeypatch.setattr(profiling, "_thop_by_module", counting("thop", real_thop))
    stats = profiling.profile_model(Adapter(), list(range(5)), probe_batch_size=5)
    assert stats["error"] is None and stats["thop"]["comparison"] == expected
    assert calls == {"flop_counter": 0, "thop": 1}  # thop_macs' pass only; FlopCounterMode's from count_flops
    assert profiling._LAST_PASS == {}  # the network and the probe batch are not kept


def test_probe_batch_is_capped_by_atoms():
    """At most ``probe_batch_size`` samples, cut where the atoms would exceed the cap, never empty."""
    from types import SimpleNamespace

    from runner.profiling import MAX_PROBE_ATOMS, probe_batch

    def cells(*sizes):
        return [SimpleNamespace(structure=[0] * n) for n in sizes]

    small = cells(*[5] * 40)  # perovskites: the first 32, all of them within the cap
    assert len(probe_batch(small, 32)) == 32
    mlearn = cells(*[64] * 40)
    assert len(probe_batch(mlearn, 32)) == MAX_PROBE_ATOMS // 64 == 4
    assert len(probe_batch(cells(300, 5), 32)) == 1  # a first sample over the cap alone
    assert len(probe_batch(cells(100, 100, 100), 32, max_atoms=250)) == 2
    assert len(probe_batch([SimpleNamespace(structure=None)] * 3, 2)) == 2
