"""The nequip-framework driver is one file kept byte-identical in the NequIP and Allegro model
folders (each folder is its own Docker build context and cannot import the other's code)."""

from tests.conftest import REPO_ROOT


def test_nequip_and_allegro_share_one_driver():
    nequip = REPO_ROOT / "images" / "nequip" / "nequip_adapter" / "driver.py"
    allegro = REPO_ROOT / "images" / "allegro" / "allegro_adapter" / "driver.py"
    assert nequip.read_bytes() == allegro.read_bytes(), (
        f"{allegro} must be a copy of {nequip}: edit one, then copy it over the other")
