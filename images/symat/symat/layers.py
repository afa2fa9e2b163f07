"""Small shared building blocks: initialisation, residual layer, MLP, segment sums."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def glorot_orthogonal(weight: Tensor, scale: float = 2.0) -> None:
    r"""DimeNet/SphereNet's initialisation: an orthogonal matrix rescaled to variance
    :math:`\text{scale} / (\text{fan}_{in} + \text{fan}_{out})`. In place."""
    with torch.no_grad():
        nn.init.orthogonal_(weight)
        weight.mul_((scale / ((weight.size(-2) + weight.size(-1)) * weight.var())).sqrt())


def segment_sum(values: Tensor, index: Tensor, size: int) -> Tensor:
    """``out[index[e]] += values[e]`` (torch ``index_add``): ``(E, *)`` -> ``(size, *)``."""
    out = values.new_zeros((size,) + tuple(values.shape[1:]))
    return out.index_add_(0, index, values)


def segment_mean(values: Tensor, index: Tensor, size: int) -> Tensor:
    """Mean of ``values`` per segment (empty segments give 0): ``(E, *)`` -> ``(size, *)``."""
    total = segment_sum(values, index, size)
    count = torch.bincount(index, minlength=size).clamp_min(1).to(values.dtype)
    return total / count.view((-1,) + (1,) * (values.dim() - 1))


class ResidualLayer(nn.Module):
    r""":math:`x + \mathrm{act}(W_2\,\mathrm{act}(W_1 x + b_1) + b_2)` (DimeNet's residual block).

    Shapes: ``(*, hidden) -> (*, hidden)``.
    """

    def __init__(self, hidden: int, act: nn.Module):
        super().__init__()
        self.act = act
        self.lin1 = nn.Linear(hidden, hidden)
        self.lin2 = nn.Linear(hidden, hidden)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.lin1, self.lin2):
            glorot_orthogonal(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.act(self.lin2(self.act(self.lin1(x))))


def build_mlp(in_dim: int, hidden_dim: int, num_hidden_layers: int, out_dim: int) -> nn.Sequential:
    """``Linear(in, h), ReLU, [Linear(h, h), ReLU] * (num_hidden_layers - 1), Linear(h, out)``
    (the reference code's ``build_mlp``; SyMat uses one hidden layer of 256)."""
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim), nn.ReLU()]
    for _ in range(num_hidden_layers - 1):
        layers += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
    layers.append(nn.Linear(hidden_dim, out_dim))
    return nn.Sequential(*layers)
