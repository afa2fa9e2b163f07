"""Unit tests for metrics.generation: validity, fingerprints, coverage, EMD and success rates.

Hand-worked values are derived in the comments; real crystals come from the shared perov_5 and
carbon_24 test files (CDVAE's CSVs, CIF strings in column ``cif``).
"""

from __future__ import annotations

import math
import random
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition, Lattice, Species, Structure

from metrics import (
    COVERAGE_CUTOFFS,
    CRYSTALNN_FINGERPRINT_LENGTH,
    MAGPIE_FINGERPRINT_LENGTH,
    composition_validity,
    coverage,
    crystal_density,
    crystalnn_fingerprint,
    emd,
    emd_density,
    emd_num_elements,
    magpie_fingerprint,
    min_interatomic_distance,
    num_distinct_elements,
    optimization_success_rates,
    standardize_composition,
    structure_validity,
    success_rate,
    validity,
    validity_composition,
    validity_structure,
)
from metrics import generation as G
from tests.conftest import require, shared_data_dir


def _read_structures(dataset: str, nrows: int) -> tuple[list[Structure], list[str]]:
    root = shared_data_dir()
    require(root is not None, "shared data (MATEVAL_DATA or ../shared/data) not found")
    frame = pd.read_csv(root / dataset / "test.csv", nrows=nrows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structures = [Structure.from_str(c, fmt="cif") for c in frame["cif"]]
    return structures, [s.composition.reduced_formula for s in structures]


@pytest.fixture(scope="module")
def perov40():
    """The first 40 rows of perov_5/test.csv."""
    return _read_structures("perov_5", 40)


def _pair(distance: float, a: float = 6.0) -> Structure:
    """Two atoms ``distance`` Å apart along x in a cubic cell of edge ``a``."""
    return Structure(Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [distance / a, 0, 0]])


NACL = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
CU = Structure(Lattice.cubic(3.615), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


# --------------------------------------------------------------------------------------------
# Structural validity
# --------------------------------------------------------------------------------------------


def test_atoms_closer_than_cutoff_are_invalid():
    assert structure_validity([_pair(0.3), _pair(0.6), _pair(0.5)]).tolist() == [False, True, True]
    assert min_interatomic_distance(_pair(0.3)) == pytest.approx(0.3)


def test_distance_across_the_periodic_boundary():
    # x = 0.01 and x = 0.99 in a 10 Å cell: 9.8 Å apart inside the cell, 0.2 Å through the boundary
    s = Structure(Lattice.cubic(10.0), ["Na", "Cl"], [[0.01, 0, 0], [0.99, 0, 0]])
    assert min_interatomic_distance(s) == pytest.approx(0.2)
    assert not structure_validity([s])[0]


def test_overlapping_atoms_are_invalid():
    s = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0, 0, 0]])
    assert min_interatomic_distance(s) == 0.0
    assert not structure_validity([s])[0]


def test_single_atom_cell_uses_its_own_periodic_image():
    # one atom: the only distance is to its own image, the shortest lattice vector
    ok = Structure(Lattice.cubic(3.0), ["Cu"], [[0, 0, 0]])
    short = Structure(Lattice.orthorhombic(0.3, 10.0, 10.0), ["Cu"], [[0, 0, 0]])  # volume 30 Å^3
    assert min_interatomic_distance(ok) == pytest.approx(3.0)
    assert min_interatomic_distance(short) == pytest.approx(0.3)
    assert structure_validity([ok, short]).tolist() == [True, False]


def test_shortest_image_in_a_skewed_cell():
    # a = (3,0,0), b = (2.9,0.5,0): b - a = (-0.1,0.5,0) has length sqrt(0.26) = 0.5099 Å
    s = Structure(Lattice([[3, 0, 0], [2.9, 0.5, 0], [0, 0, 4]]), ["Cu"], [[0, 0, 0]])
    assert min_interatomic_distance(s) == pytest.approx(math.sqrt(0.26))
    assert structure_validity([s], cutoff=0.5)[0] and not structure_validity([s], cutoff=0.52)[0]


def test_tiny_cell_volume_is_invalid():
    # a 0.05 Å^3 cube (edge 0.368 Å) with one atom: invalid
    cube = Structure(Lattice.cubic(0.05 ** (1 / 3)), ["H"], [[0, 0, 0]])
    assert cube.volume == pytest.approx(0.05)
    assert not structure_validity([cube])[0]
    # the volume test alone: primitive fcc cell with nearest image at d = 0.51 Å has cubic edge
    # a = d*sqrt(2) = 0.7212 Å and volume a^3/4 = 0.0938 Å^3 < 0.1, while every distance is
    # >= 0.51 Å >= cutoff
    d = 0.51
    fcc = Structure(Lattice(np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]]) * d / math.sqrt(2)), ["H"], [[0, 0, 0]])
    assert fcc.volume == pytest.approx((d * math.sqrt(2)) ** 3 / 4)
    assert min_interatomic_distance(fcc) == pytest.approx(d)
    assert not structure_validity([fcc])[0]
    assert structure_validity([fcc], min_volume=0.09)[0]


def test_degenerate_lattice_is_invalid_without_error():
    flat = Structure(Lattice([[1, 0, 0], [0, 1, 0], [1, 1, 0]]), ["Na"], [[0, 0, 0]])
    assert math.isnan(min_interatomic_distance(flat))
    assert not structure_validity([flat])[0]
    assert math.isnan(crystal_density(flat))


def test_none_counts_against_structure_validity():
    assert structure_validity([NACL, None]).tolist() == [True, False]
    assert validity_structure([NACL, None, NACL, None]) == 0.5


def test_structure_validity_rejects_bad_input():
    with pytest.raises(ValueError, match=r"structures\[1\]"):
        structure_validity([NACL, "NaCl"])
    with pytest.raises(ValueError, match="cutoff"):
        structure_validity([NACL], cutoff=-1)
    with pytest.raises(ValueError, match="single Structure"):
        structure_validity(NACL)
    with pytest.raises(ValueError, match="empty"):
        validity_structure([])


def test_real_perov5_and_carbon24_are_structurally_valid(perov40):
    structures, _ = perov40
    assert validity_structure(structures) == 1.0
    carbon, _ = _read_structures("carbon_24", 40)
    assert validity_structure(carbon) == 1.0
    assert validity_composition(carbon) == 1.0  # a single element


# --------------------------------------------------------------------------------------------
# Compositional validity
# --------------------------------------------------------------------------------------------


def test_charge_balanced_and_unbalanced_compositions():
    balanced = ["NaCl", "SrTiO3", "Fe2O3", "Fe4O6"]  # Fe4O6 reduces to Fe2O3
    # NaCl2: Na+ needs Cl at -1/2; KCl3: Cl at -1/3; CsF2: F has only -1
    unbalanced = ["NaCl2", "KCl3", "CsF2"]
    assert composition_validity(balanced).all()
    assert not composition_validity(unbalanced).any()


def test_srtio4_is_smact_valid_through_peroxide_oxygen():
    # SMACT (and so CDVAE) lets O take -1: Sr(+2) + Ti(+2) + 4 O(-1) = 0, and the Pauling test
    # passes (O is the most electronegative), so SrTiO4 counts as valid.
    assert composition_validity(["SrTiO4"]).tolist() == [True]
    # with oxygen restricted to -2 it would not be: 2 + 4 - 8 != 0 (checked by hand, not by SMACT)


def test_mixed_valence_is_invalid_as_in_cdvae():
    # one oxidation state per element: Fe3O4 needs Fe at +8/3
    assert composition_validity(["Fe3O4"]).tolist() == [False]


def test_single_element_and_alloys():
    assert composition_validity(["C", "CuZn", "Og"]).tolist() == [True, True, True]
    # without the alloy rule CuZn has no anion (Cu and Zn have only positive states)
    assert composition_validity(["CuZn"], include_alloys=False).tolist() == [False]


def test_pauling_test_switch():
    # Na2Cl is neutral only as 2 Na(-1) + Cl(+2), which puts the anion on the less
    # electronegative element
    assert composition_validity(["Na2Cl"]).tolist() == [False]
    assert composition_validity(["Na2Cl"], use_pauling_test=False).tolist() == [True]


def test_elements_unknown_to_smact_do_not_crash():
    # He/Ne/Ar: no oxidation states (and no Pauling electronegativity); Og (Z=118): no SMACT data
    entries = ["HeO", "ArCl", "NaOg", "OgO", "HeNe"]
    assert composition_validity(entries).tolist() == [False] * 5


def test_composition_inputs_of_every_kind():
    oxidized = Composition({Species("Fe", 3): 2, Species("O", -2): 3})
    entries = [NACL, Composition("NaCl2"), "SrTiO3", oxidized, None, Composition("Fe0.5O")]
    assert composition_validity(entries).tolist() == [True, False, True, True, False, False]
    with pytest.raises(ValueError, match=r"\[0\]"):
        composition_validity([1.5])
    with pytest.raises(ValueError, match="oxidation_states_set"):
        composition_validity(["NaCl"], oxidation_states_set="nope")


def test_validity_fractions_over_all_requested():
    nacl2 = Structure(Lattice.cubic(5.64), ["Na", "Cl", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0]])
    entries = [NACL, nacl2, None, _pair(0.3)]
    assert validity_structure(entries) == 0.5  # NACL, nacl2
    assert validity_composition(entries) == 0.5  # NACL, the pair (NaCl)
    assert validity(entries) == 0.25  # NACL only


def test_real_perov5_composition_validity(perov40):
    structures, formulas = perov40
    flags = composition_validity(structures)
    # CsRbN3 (row 14): Cs+ and Rb+ would need N at -2/3; every other of the first 40 is valid
    assert [f for f, ok in zip(formulas, flags) if not ok] == ["CsRbN3"]


def test_dynamic_programme_matches_enumeration():
    import smact

    symbols = ["H", "Li", "B", "C", "N", "O", "F", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "K", "Ca", "Ti",
               "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Se", "Br", "Sr", "Nb", "Sn", "Te", "I", "Ba", "Bi"]
    rng = random.Random(0)
    n_true = 0
    for _ in range(400):
        els = rng.sample(symbols, rng.randint(2, 4))
        counts = [rng.randint(1, 6) for _ in els]
        g = math.gcd(*counts)
        counts = [c // g for c in counts]
        ox = [smact.Element(e).oxidation_states_smact14 for e in els]
        en = [smact.Element(e).pauling_eneg for e in els]
        for pauling in (True, False):
            a = G._balanced_by_enumeration(counts, ox, en, pauling)
            assert a == G._balanced_by_dynamic_programme(counts, ox, en, pauling), (els, counts, pauling)
            n_true += a
    assert 50 < n_true < 750  # both answers occur


def test_many_elements_are_decided_quickly():
    start = time.perf_counter()
    out = composition_validity(["LiBeBNaMgAlSiPSClKCaTiVCrMnFeCoNiCuZnGaGeAsSeBr", "FeCoNiCuMnCrVO20"])
    assert time.perf_counter() - start < 2.0
    # first: B has only positive states, so every anion is more electronegative than B
    # (As, P, Se, S, Br, Cl), at most -12 in total against >= +20 from 20 cations
    assert out.tolist() == [False, True]


# --------------------------------------------------------------------------------------------
# Fingerprints
# --------------------------------------------------------------------------------------------


def test_fingerprint_lengths_and_supercell_invariance():
    fp = crystalnn_fingerprint(NACL)
    assert fp.shape == (CRYSTALNN_FINGERPRINT_LENGTH,) == (61,)
    # a supercell has the same sites, repeated: the site average is unchanged
    np.testing.assert_allclose(crystalnn_fingerprint(NACL * (2, 1, 1)), fp, atol=1e-9)
    mp = magpie_fingerprint("NaCl")
    assert mp.shape == (MAGPIE_FINGERPRINT_LENGTH,) == (132,)
    np.testing.assert_allclose(magpie_fingerprint(NACL), mp)
    np.testing.assert_allclose(magpie_fingerprint(Composition("Na2Cl2")), mp)  # fractions only
    assert np.isnan(magpie_fingerprint("He")).any()  # no imputation of missing element data


# --------------------------------------------------------------------------------------------
# Coverage
# --------------------------------------------------------------------------------------------

# Structure fingerprints (2-D): reference R0=(0,0), R1=(1,0), R2=(5,5); generated G0=(0,0.1),
# G1=(1,0.3); structure cutoff 0.35.
#   |G0-R0| = 0.1, |G0-R1| = 1.005, |G1-R0| = 1.044, |G1-R1| = 0.3, R2 is >= 6.4 from both.
# Composition fingerprints (2-D): reference (1,5), (1,5), (4,5); generated G0=(4,5), G1=(1.6,5),
# standardized with the given scaler means (2, 5), stds (sqrt(2), 1):
#   R0 = R1 = (-1/sqrt2, 0), R2 = (sqrt2, 0); G0 = (sqrt2, 0), G1 = (-0.4/sqrt2, 0) = (-0.283, 0).
#   |G0-R0| = |G0-R1| = 3/sqrt2 = 2.121, |G0-R2| = 0, |G1-R0| = |G1-R1| = 0.6/sqrt2 = 0.424,
#   |G1-R2| = 2.4/sqrt2 = 1.697; composition cutoff 0.5.
# Recall: R0: nearest in structure G0 (0.1 <= 0.35), in composition G1 (0.424 <= 0.5) -> covered
#   (two different neighbours); R1: G1 (0.3) and G1 (0.424) -> covered; R2: structure 6.4 > 0.35
#   -> not covered. COV-R = 2/3.
# Precision: G0: nearest reference R0 (0.1) and R2 (0) -> precise; G1: R1 (0.3) and R0/R1 (0.424)
#   -> precise. COV-P = 2/2 = 1, or 2/5 = 0.4 with n_requested = 5.
# Without standardization |G1-R0| would be 0.6 > 0.5: R0, R1 and G1 would not count.
REF_S = [[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]]
GEN_S = [[0.0, 0.1], [1.0, 0.3]]
REF_C = [[1.0, 5.0], [1.0, 5.0], [4.0, 5.0]]
GEN_C = [[4.0, 5.0], [1.6, 5.0]]
TOY_SCALER = {"composition_means": [2.0, 5.0], "composition_stds": [math.sqrt(2), 1.0]}


def test_coverage_hand_worked():
    out = coverage(GEN_S, GEN_C, REF_S, REF_C, structure_cutoff=0.35, composition_cutoff=0.5, **TOY_SCALER)
    assert set(out) == {"COV-R", "COV-P"}
    assert out["COV-R"] == pytest.approx(2 / 3)
    assert out["COV-P"] == 1.0
    out5 = coverage(GEN_S, GEN_C, REF_S, REF_C, 0.35, 0.5, n_requested=5, **TOY_SCALER)
    assert out5 == {"COV-R": pytest.approx(2 / 3), "COV-P": 0.4}
    # tighter structure cutoff: G1-R1 (0.3) no longer counts -> R0 only, G0 only
    tight = coverage(GEN_S, GEN_C, REF_S, REF_C, 0.2, 0.5, **TOY_SCALER)
    assert tight == {"COV-R": pytest.approx(1 / 3), "COV-P": 0.5}
    # unit scaler (raw values): G1 is 0.6 > 0.5 from R0/R1 in composition, so R0 and R1 are not covered
    # and G1 is not precise; R2 is far in structure; G0 is precise (R0 at 0.1, R2 at 0) -> COV-R 0, COV-P 1/2
    raw = coverage(GEN_S, GEN_C, REF_S, REF_C, 0.35, 0.5, composition_means=[0, 0], composition_stds=[1, 1])
    assert raw == {"COV-R": 0.0, "COV-P": 0.5}


# CDVAE's fixed Magpie scaler (132 features), M = means, S = stds, e_j = unit vector j.
# Structure fingerprints are 1-D; structure cutoff 0.2, composition cutoff 4 (CDVAE's perovskite).
#   reference R0: s 0.0,  c M            -> standardized 0
#             R1: s 1.0,  c M + 3 S e0   -> 3 e0
#             R2: s 0.5,  c M + 10 S e1  -> 10 e1
#   generated G0: s 0.1,  c M + 2 S e0, NaN in feature 7 -> 2 e0 (NaN becomes 0)
#             G1: s 1.15, c M + 3 S e0   -> 3 e0
#             G2: s 0.5,  c M + 4.5 S e1 -> 4.5 e1
# Structure distances: G0 -> R0 0.1, R1 0.9, R2 0.4; G1 -> 1.15, 0.15, 0.65; G2 -> 0.5, 0.5, 0.
# Composition distances: G0 -> R0 2, R1 1, R2 sqrt(104); G1 -> 3, 0, sqrt(109);
#                        G2 -> 4.5, sqrt(29.25) = 5.41, 5.5.
# Precision: G0 (0.1, 1) yes, G1 (0.15, 0) yes, G2 (0, 4.5 > 4) no -> 2 precise.
# Recall: R0 (G0 0.1, G0 2) yes; R1 (G1 0.15, G1 0) yes; R2 (G2 0, min(10.2, 10.4, 5.5) > 4) no
#   -> COV-R = 2/3; COV-P = 2/3, or 2/5 with 5 requested crystals (two not fingerprinted).
def _cdvae_case():
    from metrics.generation import CDVAE_COMP_SCALER_MEANS, CDVAE_COMP_SCALER_STDS

    m, s = np.array(CDVAE_COMP_SCALER_MEANS), np.array(CDVAE_COMP_SCALER_STDS)
    e = np.eye(MAGPIE_FINGERPRINT_LENGTH)
    ref_c = np.array([m, m + 3 * s * e[0], m + 10 * s * e[1]])
    gen_c = np.array([m + 2 * s * e[0], m + 3 * s * e[0], m + 4.5 * s * e[1]])
    gen_c[0, 7] = np.nan
    return [[0.1], [1.15], [0.5]], gen_c, [[0.0], [1.0], [0.5]], ref_c


def test_coverage_with_cdvae_scaler_hand_worked():
    gen_s, gen_c, ref_s, ref_c = _cdvae_case()
    assert coverage(gen_s, gen_c, ref_s, ref_c, 0.2, 4.0) == {"COV-R": 2 / 3, "COV-P": 2 / 3}
    assert coverage(gen_s, gen_c, ref_s, ref_c, 0.2, 4.0, n_requested=5) == {"COV-R": 2 / 3, "COV-P": 0.4}
    # the composition cutoff of mp_20 (10): G2 is precise (4.5) and R2 covered (5.5)
    assert coverage(gen_s, gen_c, ref_s, ref_c, 0.2, 10.0) == {"COV-R": 1.0, "COV-P": 1.0}


def test_cdvae_scaler_does_not_depend_on_the_reference_set():
    gen_s, gen_c, ref_s, ref_c = _cdvae_case()
    g = standardize_composition(gen_c)
    np.testing.assert_allclose(g[:, :2], [[2, 0], [3, 0], [0, 4.5]], atol=1e-12)
    assert np.all(g[:, 2:] == 0) and np.isfinite(g).all()
    # row by row: standardizing a row alone or among others gives the same numbers
    np.testing.assert_array_equal(standardize_composition(gen_c[1:2]), g[1:2])
    # scaling by the reference set's own mean and std (mateval's earlier variant) gives another answer:
    # feature 1 has reference std 4.71 S_1, so G2 and R2 come within 4 of each other (G2 precise, R2
    # covered): COV-R = COV-P = 1
    mu = np.nanmean(ref_c, axis=0)
    sd = np.where(np.nanstd(ref_c, axis=0) > 0, np.nanstd(ref_c, axis=0), 1.0)
    other = coverage(gen_s, gen_c, ref_s, ref_c, 0.2, 4.0, composition_means=mu, composition_stds=sd)
    assert other == {"COV-R": 1.0, "COV-P": 1.0}


def test_cdvae_scaler_constants_are_consistent():
    from metrics.generation import CDVAE_COMP_SCALER_MEANS, CDVAE_COMP_SCALER_STDS

    m = np.array(CDVAE_COMP_SCALER_MEANS).reshape(22, 6)  # 22 properties x (min, max, range, mean, avg_dev, mode)
    s = np.array(CDVAE_COMP_SCALER_STDS)
    assert s.shape == (MAGPIE_FINGERPRINT_LENGTH,) and np.all(s > 0)
    # a mean over crystals is linear: mean(range) = mean(max) - mean(min) for every property; a
    # mistyped digit in one of these columns breaks it
    np.testing.assert_allclose(m[:, 2], m[:, 1] - m[:, 0], rtol=1e-9, atol=1e-9)
    assert np.all(m[:, 0] <= m[:, 3]) and np.all(m[:, 3] <= m[:, 1])  # min <= mean <= max


def test_standardize_composition_toy_and_errors():
    g = standardize_composition(GEN_C, means=[2.0, 5.0], stds=[math.sqrt(2), 1.0])
    np.testing.assert_allclose(g, [[math.sqrt(2), 0], [-0.4 / math.sqrt(2), 0]])
    # NaN (missing Magpie data) becomes 0 after scaling, as CDVAE's replace_nan_token=0
    np.testing.assert_array_equal(standardize_composition([[np.nan, 1.0]], means=[3.0, 0.0], stds=[1.0, 2.0]),
                                  [[0.0, 0.5]])
    with pytest.raises(ValueError, match="132"):
        standardize_composition(GEN_C)  # CDVAE's scaler needs 132 Magpie features
    with pytest.raises(ValueError, match="stds"):
        standardize_composition(GEN_C, means=[0.0, 0.0], stds=[1.0, 0.0])
    with pytest.raises(ValueError, match="inf"):
        standardize_composition([[np.inf, 0.0]], means=[0.0, 0.0], stds=[1.0, 1.0])


def test_coverage_of_a_set_against_itself_is_one():
    rng = np.random.default_rng(0)
    s, c = rng.normal(size=(20, 5)), rng.normal(size=(20, MAGPIE_FINGERPRINT_LENGTH))
    assert coverage(s, c, s, c, 0.0, 0.0) == {"COV-R": 1.0, "COV-P": 1.0}


def test_coverage_edge_cases_and_errors():
    empty = coverage(np.zeros((0, 2)), np.zeros((0, 2)), REF_S, REF_C, 0.2, 4.0, n_requested=10, **TOY_SCALER)
    assert math.isnan(empty["COV-R"]) and math.isnan(empty["COV-P"])
    with pytest.raises(ValueError, match="n_requested"):
        coverage(GEN_S, GEN_C, REF_S, REF_C, 0.2, 4.0, n_requested=1, **TOY_SCALER)
    with pytest.raises(ValueError, match="gen_structure_fps contains NaN"):
        coverage([[np.nan, 0.0], [0.0, 0.0]], GEN_C, REF_S, REF_C, 0.2, 4.0, **TOY_SCALER)
    with pytest.raises(ValueError, match="row counts"):
        coverage(GEN_S, GEN_C[:1], REF_S, REF_C, 0.2, 4.0, **TOY_SCALER)
    with pytest.raises(ValueError, match="empty"):
        coverage(GEN_S, GEN_C, np.zeros((0, 2)), np.zeros((0, 2)), 0.2, 4.0, **TOY_SCALER)
    with pytest.raises(ValueError, match="structure_cutoff"):
        coverage(GEN_S, GEN_C, REF_S, REF_C, -0.2, 4.0, **TOY_SCALER)
    with pytest.raises(ValueError, match="132"):
        coverage(GEN_S, GEN_C, REF_S, REF_C, 0.2, 4.0)  # 2 features but CDVAE's scaler by default


def test_coverage_cutoffs_are_cdvae_values():
    assert COVERAGE_CUTOFFS == {"perov_5": (0.2, 4.0), "carbon_24": (0.2, 4.0), "mp_20": (0.4, 10.0)}


# --------------------------------------------------------------------------------------------
# EMD
# --------------------------------------------------------------------------------------------


def test_emd_hand_worked():
    # W1 = integral of |F_a - F_b|. a = {0, 1}, b = {0, 0, 3}:
    #   on [0,1): F_a = 1/2, F_b = 2/3 -> 1/6 over length 1 -> 1/6
    #   on [1,3): F_a = 1,   F_b = 2/3 -> 1/3 over length 2 -> 2/3
    #   total 1/6 + 2/3 = 5/6 g/cm^3
    assert emd([0.0, 1.0], [0.0, 0.0, 3.0]) == pytest.approx(5 / 6)
    assert emd([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]) == pytest.approx(1.0)  # a shift by 1
    assert emd([2.5, 1.5], [1.5, 2.5]) == 0.0
    assert math.isnan(emd([], [1.0]))
    with pytest.raises(ValueError, match="values_a"):
        emd([np.nan], [1.0])


def test_emd_of_structures():
    # Cu, one atom: 63.546 g/mol / (N_A * a^3): a = 3 Å -> 3.9082, a = 4 Å -> 1.6488 g/cm^3
    a = Structure(Lattice.cubic(3.0), ["Cu"], [[0, 0, 0]])
    b = Structure(Lattice.cubic(4.0), ["Cu"], [[0, 0, 0]])
    assert crystal_density(a) == pytest.approx(63.546 / (0.602214076 * 27), rel=1e-4)
    assert emd_density([a], [b]) == pytest.approx(crystal_density(a) - crystal_density(b))
    # numbers of elements {1, 1} vs {2, 1}: half the mass moves by 1
    assert num_distinct_elements(NACL) == 2
    assert emd_num_elements([a, b], [NACL, a]) == 0.5
    assert emd_density([a, NACL], [a, NACL]) == 0.0
    with pytest.raises(ValueError, match="gen_structures"):
        emd_density([None], [a])


# --------------------------------------------------------------------------------------------
# Success rates
# --------------------------------------------------------------------------------------------


def test_success_rate_counts_returned_structures():
    assert success_rate(4, [NACL, None, NACL]) == 0.5  # the missing 4th counts as a failure
    assert success_rate(2, [NACL, NACL]) == 1.0
    with pytest.raises(ValueError, match="more than n_requested"):
        success_rate(1, [NACL, NACL])
    with pytest.raises(ValueError, match="positive integer"):
        success_rate(0, [])


def test_optimization_success_rates():
    ref = np.arange(1, 101, dtype=float)  # percentiles (linear): 5.95, 10.9, 15.85
    assert optimization_success_rates([1.0, 8.0, 12.0, 50.0], ref) == {"SR5": 0.25, "SR10": 0.5, "SR15": 0.75}
    # 2-D (steps, runs): best over steps; a run with only NaN (invalid crystals) fails
    steps = [[50.0, np.nan, 20.0], [5.0, np.nan, 11.0]]
    assert optimization_success_rates(steps, ref) == {"SR5": pytest.approx(1 / 3), "SR10": pytest.approx(1 / 3),
                                                      "SR15": pytest.approx(2 / 3)}
    with pytest.raises(ValueError, match="inf"):
        optimization_success_rates([np.inf], ref)


def test_public_names_are_exported():
    import metrics

    for name in G.__all__:
        assert getattr(metrics, name) is getattr(G, name)
        assert name in metrics.__all__
    assert len(metrics.__all__) == len(set(metrics.__all__))
