"""Files kept byte-identical across model folders (each folder is its own Docker build context and
cannot import another's code): the nequip-framework driver of NequIP and Allegro, the aviary-models
driver of Roost and Wrenformer; and the locks that make two models share one environment
(identical locks: one ``.envs/env-<sha>``): Roost and Wrenformer, Matformer and DimeNet++."""

import pytest

from tests.conftest import REPO_ROOT

IMAGES = REPO_ROOT / "images"


@pytest.mark.parametrize("first, second", [("nequip/nequip_adapter/driver.py", "allegro/allegro_adapter/driver.py"),
                                           ("roost/roost_adapter/driver.py", "wrenformer/wrenformer_adapter/driver.py"),
                                           ("roost/requirements.in", "wrenformer/requirements.in"),
                                           ("roost/requirements.lock", "wrenformer/requirements.lock"),
                                           ("matformer/requirements.lock", "dimenetpp/requirements.lock")])
def test_copies_are_identical(first, second):
    assert (IMAGES / first).read_bytes() == (IMAGES / second).read_bytes(), (
        f"images/{second} must be a copy of images/{first}: edit one, then copy it over the other")
