"""compose/docker-compose.yml has exactly one service per model folder (images/<name>/ with a
model.yaml), each built from its folder on the base image and run like the Docker backend runs it.

A new model folder fails ``test_one_service_per_model`` until its service is added; the failure
message is the block to paste. (``tests/integration/test_docker_backend.py`` checks the file with a
real ``docker-compose config``.)"""

from __future__ import annotations

import re

import pytest
import yaml

from orchestrator import registry
from tests.conftest import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "compose" / "docker-compose.yml"
NOT_MODEL_SERVICES = {"base"}


def service_block(name: str, task: str) -> str:
    """The compose service of model ``name`` (default task ``task``), as in the file."""
    return f"""
  {name}:
    <<: *model
    image: mateval/{name}:latest
    depends_on: [base]
    build:
      context: ../images/{name}
      args:
        MATEVAL_BASE: mateval/base:latest
    command: ["--results", "/mateval/results", "--model-dir", "/opt/mateval/images/{name}",
              "--task", "${{TASK:-{task}}}", "--data-root", "/mateval/data/0",
              "--data-root", "/mateval/data/1", "--backend", "docker"]
"""


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture
def models(monkeypatch) -> list[str]:
    monkeypatch.delenv("MATEVAL_IMAGES", raising=False)  # the repository's own images/
    names = registry.model_names()
    assert names, "no model folders found"
    return names


def test_one_service_per_model(compose, models):
    services = set(compose["services"])
    missing = [name for name in models if name not in services]
    assert not missing, (f"{COMPOSE_FILE.relative_to(REPO_ROOT)} has no service for {', '.join(missing)}; add:\n"
                         + "".join(service_block(name, registry.get_model(name).data["default_tasks"][0])
                                   for name in missing))
    extra = services - set(models) - NOT_MODEL_SERVICES
    assert not extra, f"services without a model folder (images/<name>/model.yaml): {sorted(extra)}"


def test_base_service_builds_the_base_image(compose):
    base = compose["services"]["base"]
    assert base["image"] == "mateval/base:latest"
    assert (COMPOSE_FILE.parent / base["build"]["context"]).resolve() == REPO_ROOT
    assert (REPO_ROOT / base["build"]["dockerfile"]) == REPO_ROOT / "images" / "base" / "Dockerfile"


def test_model_services_build_their_folder_and_run_like_the_docker_backend(compose, models):
    shared = compose["x-model"]
    for name in models:
        service = compose["services"][name]
        folder = registry.images_dir() / name
        build = service["build"]
        assert (COMPOSE_FILE.parent / build["context"]).resolve() == folder.resolve(), name
        assert (folder / build.get("dockerfile", "Dockerfile")).is_file(), name
        assert build["args"]["MATEVAL_BASE"] == "mateval/base:latest", name
        assert service["image"] == f"mateval/{name}:latest"
        assert "base" in service["depends_on"], name
        # the shared settings (<<: *model): no network, the host user, read-only data, GPUs
        for key, value in shared.items():
            assert service.get(key) == value, f"{name}: {key} differs from x-model"
        command = service["command"]
        assert command[command.index("--model-dir") + 1] == f"/opt/mateval/images/{name}", name
        task = re.fullmatch(r"\$\{TASK:-([A-Za-z0-9_]+)\}", command[command.index("--task") + 1])
        assert task, f"{name}: --task is not ${{TASK:-<task>}}"
        assert task.group(1) in registry.get_model(name).data["default_tasks"], name


def test_service_block_matches_the_file(compose):
    """The block the failure message suggests is what the file holds (so pasting it passes)."""
    block = yaml.safe_load("x-model: &model {network_mode: none}\nservices:" + service_block("pdos", "phonon_dos"))
    expected = dict(block["services"]["pdos"], **{k: v for k, v in compose["x-model"].items()})
    assert compose["services"]["pdos"] == expected
