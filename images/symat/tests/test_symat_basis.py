"""SyMat / SphereNet bases: spherical Bessel functions and zeros, real spherical harmonics, and the
shapes and finiteness of the distance, angle and torsion bases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special

from tests.conftest import REPO_ROOT

MODEL_DIR = REPO_ROOT / "images" / "symat"

from symat.basis import (  # noqa: E402
    BesselRadialBasis,
    Envelope,
    RadialBesselBasis,
    SineBasis,
    SphericalTorsionBasis,
    real_spherical_harmonics,
    spherical_bessel_jn,
    spherical_bessel_zeros,
)


def test_spherical_bessel_matches_scipy_including_small_arguments():
    x = torch.cat([torch.logspace(-3, math.log10(30.0), 3000, dtype=torch.float64),
                   torch.tensor([math.pi, 2 * math.pi, 4.493409457909064])])
    got = spherical_bessel_jn(7, x).numpy()
    expected = np.stack([special.spherical_jn(order, x.numpy()) for order in range(7)], axis=-1)
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-14)


def test_spherical_bessel_zeros():
    zeros = spherical_bessel_zeros(7, 6)
    assert zeros.shape == (7, 6)
    np.testing.assert_allclose(zeros[0], np.arange(1, 7) * np.pi)
    for order in range(7):
        np.testing.assert_allclose(special.spherical_jn(order, zeros[order]), 0.0, atol=1e-12)
        assert np.all(np.diff(zeros[order]) > 0)
    assert np.all(zeros[1:, 0] > zeros[:-1, 0])  # interlacing: first zero grows with the order


def test_real_spherical_harmonics_are_orthonormal():
    n_theta, n_phi = 200, 400
    theta = (torch.arange(n_theta, dtype=torch.float64) + 0.5) * math.pi / n_theta
    phi = torch.arange(n_phi, dtype=torch.float64) * 2 * math.pi / n_phi
    grid_theta, grid_phi = torch.meshgrid(theta, phi, indexing="ij")
    ylm = real_spherical_harmonics(7, grid_theta, grid_phi)
    assert ylm.shape == (n_theta, n_phi, 49)
    weight = torch.sin(grid_theta) * (math.pi / n_theta) * (2 * math.pi / n_phi)
    gram = torch.einsum("abi,abj,ab->ij", ylm, ylm, weight)
    torch.testing.assert_close(gram, torch.eye(49, dtype=torch.float64), atol=2e-3, rtol=0)
    # m = 0 harmonics without phi are the m = 0 columns of the full set
    m_zero = [l * l + l for l in range(7)]
    torch.testing.assert_close(real_spherical_harmonics(7, theta), real_spherical_harmonics(7, theta, 0 * theta)[:, m_zero])
    # Y_1^0 = sqrt(3 / 4 pi) cos(theta)
    torch.testing.assert_close(real_spherical_harmonics(2, theta)[:, 1], math.sqrt(3 / (4 * math.pi)) * torch.cos(theta))


def test_bases_shapes_and_finite_values():
    torch.manual_seed(0)
    n_edges, n_triplets = 40, 300
    distance = torch.rand(n_edges) * 4.5 + 0.5  # Å, within the 5 Å cutoff
    angle = torch.rand(n_triplets) * math.pi
    torsion = torch.where(torch.rand(n_triplets) < 0.1, torch.full((n_triplets,), 2 * math.pi),
                          torch.rand(n_triplets) * math.pi)
    idx_kj = torch.randint(0, n_edges, (n_triplets,))

    rbf = RadialBesselBasis(6, 5.0, 5)(distance)
    assert rbf.shape == (n_edges, 6) and torch.isfinite(rbf).all()
    radial = BesselRadialBasis(7, 6, 5.0)(distance)
    assert radial.shape == (n_edges, 7, 6) and radial.dtype == torch.float32 and torch.isfinite(radial).all()
    sbf, tbf = SphericalTorsionBasis(7, 6, 5.0)(distance, angle, torsion, idx_kj)
    assert sbf.shape == (n_triplets, 7 * 6) and tbf.shape == (n_triplets, 7 * 7 * 6)
    assert torch.isfinite(sbf).all() and torch.isfinite(tbf).all()
    assert sbf.abs().max() > 0.1 and tbf.abs().max() > 0.1
    sine = SineBasis(6, 5.0)(distance)
    assert sine.shape == (n_edges, 6) and torch.isfinite(sine).all()
    # the torsion basis is periodic in the torsion: 2 pi reads as 0
    _, tbf_zero = SphericalTorsionBasis(7, 6, 5.0)(distance, angle, torch.zeros(n_triplets), idx_kj)
    _, tbf_two_pi = SphericalTorsionBasis(7, 6, 5.0)(distance, angle, torch.full((n_triplets,), 2 * math.pi), idx_kj)
    torch.testing.assert_close(tbf_zero, tbf_two_pi, atol=1e-5, rtol=1e-5)


def test_radial_functions_are_orthonormal_on_the_unit_ball():
    # int_0^1 jt_ln(x c) jt_ln'(x c) x^2 dx = delta_nn'  (c = 1)
    x = (torch.arange(20000, dtype=torch.float64) + 0.5) / 20000
    values = BesselRadialBasis(4, 3, 1.0)(x).double()  # (X, L, K)
    gram = torch.einsum("xlk,xlm,x->lkm", values, values, x**2) / 20000
    torch.testing.assert_close(gram, torch.eye(3, dtype=torch.float64).expand(4, 3, 3), atol=2e-3, rtol=0)


@pytest.mark.parametrize("exponent", [5, 6])
def test_envelope_vanishes_smoothly_at_the_cutoff(exponent):
    envelope = Envelope(exponent)
    x = torch.tensor([0.999999, 1.0, 1.5], dtype=torch.float64)
    values = envelope(x) * x
    assert abs(float(values[0])) < 1e-9 and float(values[1]) == 0.0 and float(values[2]) == 0.0
    assert float(envelope(torch.tensor([0.01], dtype=torch.float64))) == pytest.approx(100.0, rel=1e-3)
