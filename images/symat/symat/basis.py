r"""SphereNet's geometric bases (Liu et al., "Spherical Message Passing for 3D Molecular Graphs",
ICLR 2022, Sec. 3.3; the radial part as in DimeNet, Klicpera et al., ICLR 2020), and the plain sine
basis of SyMat's distance-only score network.

Notation: :math:`d` an edge length (Å), :math:`c` the basis cutoff (Å), :math:`x = d/c`,
:math:`j_l` the spherical Bessel function of the first kind of order :math:`l`, :math:`z_{ln}` its
:math:`n`-th positive zero, :math:`Y_l^m` real spherical harmonics, :math:`\theta` the angle
and :math:`\varphi` the torsion of a triplet (:func:`~symat.graph.angles_and_torsions`).

- distance (:class:`RadialBesselBasis`), ``num_radial`` functions:
  :math:`e_{\mathrm{RBF},n}(d) = u(x)\,\sin(n\pi x)` with the DimeNet envelope
  :math:`u(x) = 1/x - \tfrac{(p+1)(p+2)}{2}x^{p-1} + p(p+2)x^{p} - \tfrac{p(p+1)}{2}x^{p+1}`
  (``p = envelope_exponent + 1``), which contains the :math:`\sin(x)/x = j_0` shape and goes smoothly to
  zero at the cutoff; the frequencies :math:`n\pi` are trainable, as in DimeNet/SphereNet.
- angle (:class:`SphericalTorsionBasis`), ``num_spherical * num_radial`` functions:
  :math:`a_{\mathrm{SBF},ln}(d, \theta) = \tilde j_{ln}(d)\, Y_l^0(\theta)`.
- torsion (:class:`SphericalTorsionBasis`), ``num_spherical**2 * num_radial`` functions:
  :math:`a_{\mathrm{TBF},lmn}(d, \theta, \varphi) = \tilde j_{ln}(d)\, Y_l^m(\theta, \varphi)`,
  :math:`-l \le m \le l`,

with the normalised radial functions
:math:`\tilde j_{ln}(d) = \sqrt{2}\,|j_{l+1}(z_{ln})|^{-1}\, j_l(z_{ln} d / c)` (orthonormal on
:math:`[0, 1]` with weight :math:`x^2`). In a triplet ``k -> j -> i`` the distance is that of the
edge ``kj``.

Differences from the reference implementations (DIG SphereNet and the SyMat code):
    - The reference builds :math:`j_l` and :math:`Y_l^m` as sympy expressions evaluated in float32;
      the closed forms of :math:`j_l` cancel catastrophically for small arguments. We evaluate
      :math:`j_l` with Miller's downward recurrence in float64 (exact to ~1e-12 for all arguments)
      and the harmonics with the standard associated-Legendre recurrences. Same functions.
    - The reference reshapes the 49 torsion harmonics into a ``7 x 7`` block that pairs
      :math:`j_l` with harmonics of other degrees; we pair :math:`j_l` with :math:`Y_l^m` of the
      same degree as in the paper's formula. Same size (``7 * 7 * 6 = 294``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import special
from scipy.optimize import brentq
from torch import Tensor, nn


def spherical_bessel_jn(num_orders: int, x: Tensor) -> Tensor:
    r"""Spherical Bessel functions :math:`j_0(x), \dots, j_{L-1}(x)` by Miller's downward recurrence.

    :math:`j_{l-1}(x) = \frac{2l+1}{x} j_l(x) - j_{l+1}(x)`, started far above the highest order
    needed from an arbitrary small value and normalised with the exact :math:`j_0 = \sin x / x`
    or :math:`j_1 = \sin x / x^2 - \cos x / x` (whichever is larger in magnitude). Stable for all
    :math:`x > 0`, unlike the upward recurrence or the closed forms.

    Shapes: ``x (*)`` (any float; computed in float64) -> ``(*, num_orders)`` float64.
    Values at ``x <= 1e-8`` are those at ``1e-8`` (i.e. :math:`j_0 = 1`, :math:`j_{l>0} \approx 0`).

    Raises:
        ValueError: ``num_orders < 1``.
    """
    if num_orders < 1:
        raise ValueError(f"num_orders must be >= 1, got {num_orders}")
    x = x.double().clamp_min(1e-8)
    x_max = float(x.max()) if x.numel() else 1.0
    start = int(max(num_orders, math.ceil(x_max)) + 30)
    j_next = torch.zeros_like(x)  # j_{l+1}, unnormalised
    j_cur = torch.full_like(x, 1e-30)  # j_l, unnormalised
    values: dict[int, Tensor] = {}
    for order in range(start, 0, -1):  # computes j_{order-1}
        j_cur, j_next = (2 * order + 1) / x * j_cur - j_next, j_cur
        if order - 1 < num_orders:
            values[order - 1] = j_cur
        big = j_cur.abs() > 1e150
        if bool(big.any()):  # rescale everything computed so far (ratios are what matter)
            scale = torch.where(big, torch.full_like(x, 1e-150), torch.ones_like(x))
            j_cur, j_next = j_cur * scale, j_next * scale
            values = {key: value * scale for key, value in values.items()}
    # now j_cur = j_0 and j_next = j_1 (unnormalised)
    j0 = torch.sin(x) / x
    j1 = torch.sin(x) / x**2 - torch.cos(x) / x
    norm = torch.where(j0.abs() >= j1.abs(), j0 / j_cur, j1 / j_next)
    return torch.stack([values[l] for l in range(num_orders)], dim=-1) * norm.unsqueeze(-1)


def spherical_bessel_zeros(num_orders: int, num_zeros: int) -> np.ndarray:
    r"""The first ``num_zeros`` positive zeros :math:`z_{ln}` of :math:`j_l`, ``l < num_orders``.

    :math:`j_0` vanishes at :math:`n\pi`; the zeros of :math:`j_l` interlace those of
    :math:`j_{l-1}`, so each is bracketed by two consecutive zeros of the previous order and found
    with Brent's method (scipy).

    Returns: ``(num_orders, num_zeros)`` float64.
    """
    zeros = np.zeros((num_orders, num_zeros))
    points = np.arange(1, num_zeros + num_orders) * np.pi  # zeros of j_0, enough for the interlacing
    zeros[0] = points[:num_zeros]
    for order in range(1, num_orders):
        roots = np.array([
            brentq(lambda r: special.spherical_jn(order, r), points[i], points[i + 1])
            for i in range(len(points) - 1)
        ])
        zeros[order] = roots[:num_zeros]
        points = roots
    return zeros


def real_spherical_harmonics(num_degrees: int, theta: Tensor, phi: Tensor | None = None) -> Tensor:
    r"""Real orthonormal spherical harmonics up to degree ``num_degrees - 1``.

    .. math::
        Y_l^0 = K_l^0 P_l^0(\cos\theta),\quad
        Y_l^{m} = \sqrt 2 K_l^m \cos(m\varphi) P_l^m(\cos\theta),\quad
        Y_l^{-m} = \sqrt 2 K_l^m \sin(m\varphi) P_l^m(\cos\theta),\quad
        K_l^m = \sqrt{\tfrac{2l+1}{4\pi}\tfrac{(l-m)!}{(l+m)!}}

    (``m > 0``; associated Legendre functions with the Condon-Shortley phase).

    Shapes: ``theta (*)``, ``phi (*)`` or ``None`` -> ``(*, num_degrees)`` (``phi=None``: only
    :math:`Y_l^0`) or ``(*, num_degrees**2)`` ordered by degree ``l``, then
    ``m = -l, ..., l``. Computed in float64.
    """
    theta = theta.double()
    z, s = torch.cos(theta), torch.sin(theta)
    # P[l][m] for 0 <= m <= l < L
    legendre: list[list[Tensor]] = [[torch.ones_like(z)]]
    for l in range(1, num_degrees):
        row = []
        for m in range(l + 1):
            if m == l:
                row.append(-(2 * l - 1) * s * legendre[l - 1][l - 1])
            elif m == l - 1:
                row.append((2 * l - 1) * z * legendre[l - 1][m])
            else:
                row.append(((2 * l - 1) * z * legendre[l - 1][m] - (l + m - 1) * legendre[l - 2][m]) / (l - m))
        legendre.append(row)

    def k(l: int, m: int) -> float:
        return math.sqrt((2 * l + 1) / (4 * math.pi) * math.factorial(l - m) / math.factorial(l + m))

    if phi is None:
        return torch.stack([k(l, 0) * legendre[l][0] for l in range(num_degrees)], dim=-1)
    phi = phi.double()
    out = []
    for l in range(num_degrees):
        for m in range(-l, l + 1):
            if m == 0:
                out.append(k(l, 0) * legendre[l][0])
            elif m > 0:
                out.append(math.sqrt(2) * k(l, m) * torch.cos(m * phi) * legendre[l][m])
            else:
                out.append(math.sqrt(2) * k(l, -m) * torch.sin(-m * phi) * legendre[l][-m])
    return torch.stack(out, dim=-1)


class Envelope(nn.Module):
    r"""DimeNet's smooth cutoff with the :math:`1/x` of :math:`j_0` folded in:
    :math:`u(x) = 1/x + a x^{p-1} + b x^{p} + c x^{p+1}`, :math:`a = -(p+1)(p+2)/2`,
    :math:`b = p(p+2)`, :math:`c = -p(p+1)/2`, ``p = exponent + 1``; :math:`x u(x)` and its first two
    derivatives vanish at :math:`x = 1`. Set to 0 for :math:`x \ge 1`.

    Shapes: ``x (*)`` -> ``(*)``.
    """

    def __init__(self, exponent: int):
        super().__init__()
        self.p = int(exponent) + 1
        p = self.p
        self.a, self.b, self.c = -(p + 1) * (p + 2) / 2, p * (p + 2), -p * (p + 1) / 2

    def forward(self, x: Tensor) -> Tensor:
        p = self.p
        xp0 = x.pow(p - 1)
        value = 1.0 / x + self.a * xp0 + self.b * xp0 * x + self.c * xp0 * x * x
        return torch.where(x < 1, value, torch.zeros_like(value))


class RadialBesselBasis(nn.Module):
    r"""SphereNet's distance basis :math:`e_{\mathrm{RBF},n}(d) = u(d/c)\sin(w_n d/c)`,
    :math:`w_n` initialised to :math:`n\pi` (trainable), ``n = 1..num_radial``.

    Shapes: ``distance (E,)`` Å -> ``(E, num_radial)``. Units: Å⁻¹-free (``d/c`` dimensionless).
    """

    def __init__(self, num_radial: int, cutoff: float, envelope_exponent: int = 5):
        super().__init__()
        self.cutoff = float(cutoff)
        self.envelope = Envelope(envelope_exponent)
        self.freq = nn.Parameter(torch.arange(1, num_radial + 1, dtype=torch.float32) * math.pi)

    def forward(self, distance: Tensor) -> Tensor:
        x = (distance / self.cutoff).unsqueeze(-1)
        return self.envelope(x) * torch.sin(self.freq * x)


class SineBasis(nn.Module):
    r"""The distance basis of SyMat's score network: :math:`\sin(w_n d / c)`, :math:`w_n`
    initialised to :math:`n\pi` (trainable), no envelope, as in the reference ``SphereNetLight``.

    Shapes: ``distance (E,)`` Å -> ``(E, num_radial)``.
    """

    def __init__(self, num_radial: int, cutoff: float):
        super().__init__()
        self.cutoff = float(cutoff)
        self.freq = nn.Parameter(torch.arange(1, num_radial + 1, dtype=torch.float32) * math.pi)

    def forward(self, distance: Tensor) -> Tensor:
        return torch.sin(self.freq * (distance / self.cutoff).unsqueeze(-1))


class BesselRadialBasis(nn.Module):
    r"""Normalised radial functions :math:`\tilde j_{ln}(d) = \sqrt 2 |j_{l+1}(z_{ln})|^{-1}
    j_l(z_{ln} d / c)` (evaluated in float64, returned as float32).

    Shapes: ``distance (E,)`` Å -> ``(E, num_spherical, num_radial)``.
    """

    def __init__(self, num_spherical: int, num_radial: int, cutoff: float):
        super().__init__()
        self.num_spherical, self.num_radial, self.cutoff = num_spherical, num_radial, float(cutoff)
        zeros = spherical_bessel_zeros(num_spherical, num_radial)
        norms = np.sqrt(2.0) / np.abs(np.stack([
            special.spherical_jn(l + 1, zeros[l]) for l in range(num_spherical)
        ]))
        self.register_buffer("zeros", torch.tensor(zeros, dtype=torch.float64), persistent=False)
        self.register_buffer("norms", torch.tensor(norms, dtype=torch.float64), persistent=False)

    def forward(self, distance: Tensor) -> Tensor:
        x = distance.double().reshape(-1, 1, 1) / self.cutoff * self.zeros  # (E, L, K)
        jl = spherical_bessel_jn(self.num_spherical, x)  # (E, L, K, L)
        orders = torch.arange(self.num_spherical, device=x.device).view(1, -1, 1, 1)
        jl = jl.gather(-1, orders.expand(x.shape[0], -1, self.num_radial, 1)).squeeze(-1)
        return (jl * self.norms).float()


class SphericalTorsionBasis(nn.Module):
    r"""SphereNet's angle and torsion bases of every triplet ``k -> j -> i``:
    :math:`a_{SBF} = \tilde j_{ln}(d_{kj})\,Y_l^0(\theta_{kji})` and
    :math:`a_{TBF} = \tilde j_{ln}(d_{kj})\,Y_l^m(\theta_{kji}, \varphi_{kji})` (the radial part
    is computed once per edge and shared).

    Shapes: ``distance (E,)`` Å, ``angle, torsion (T,)`` rad, ``idx_kj (T,)`` ->
    ``(sbf (T, num_spherical * num_radial), tbf (T, num_spherical**2 * num_radial))`` float32,
    ordered by ``(l, n)`` and ``(l, m, n)``.
    """

    def __init__(self, num_spherical: int, num_radial: int, cutoff: float):
        super().__init__()
        self.radial = BesselRadialBasis(num_spherical, num_radial, cutoff)
        self.num_spherical, self.num_radial = num_spherical, num_radial
        degree = torch.cat([torch.full((2 * l + 1,), l) for l in range(num_spherical)])
        self.register_buffer("degree", degree, persistent=False)
        self.register_buffer("m_zero", torch.tensor([l * l + l for l in range(num_spherical)]), persistent=False)

    def forward(self, distance: Tensor, angle: Tensor, torsion: Tensor, idx_kj: Tensor) -> tuple[Tensor, Tensor]:
        radial = self.radial(distance)  # (E, L, K)
        ylm = real_spherical_harmonics(self.num_spherical, angle, torsion).float()  # (T, L^2)
        sbf = radial[idx_kj] * ylm[:, self.m_zero].unsqueeze(-1)  # (T, L, K)
        tbf = radial[:, self.degree, :][idx_kj] * ylm.unsqueeze(-1)  # (T, L^2, K)
        return sbf.reshape(sbf.shape[0], -1), tbf.reshape(tbf.shape[0], -1)
