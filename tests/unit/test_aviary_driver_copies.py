"""The aviary-models driver is one file kept byte-identical in the Roost and Wrenformer model
folders (each folder is its own Docker build context and cannot import the other's code)."""

from tests.conftest import REPO_ROOT


def test_roost_and_wrenformer_share_one_driver():
    roost = REPO_ROOT / "images" / "roost" / "roost_adapter" / "driver.py"
    wrenformer = REPO_ROOT / "images" / "wrenformer" / "wrenformer_adapter" / "driver.py"
    assert roost.read_bytes() == wrenformer.read_bytes(), (
        f"{wrenformer} must be a copy of {roost}: edit one, then copy it over the other")


def test_roost_and_wrenformer_share_one_environment():
    """Identical requirements give byte-identical locks, hence one model environment."""
    folders = [REPO_ROOT / "images" / name for name in ("roost", "wrenformer")]
    assert folders[0].joinpath("requirements.in").read_bytes() == folders[1].joinpath("requirements.in").read_bytes()
    assert folders[0].joinpath("requirements.lock").read_bytes() == folders[1].joinpath("requirements.lock").read_bytes()
