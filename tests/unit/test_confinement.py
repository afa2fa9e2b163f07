"""The Docker backend's user mapping and hand-over of a run directory (real files, no Docker)."""

import os

import pytest

from orchestrator.backends.docker import CONTAINER_GID, CONTAINER_UID, container_user, hand_over


@pytest.mark.parametrize("uid, gid, expected", [
    (0, 0, (CONTAINER_UID, CONTAINER_GID)),  # root inside never: the base image's user
    (0, 5, (CONTAINER_UID, CONTAINER_GID)),
    (1234, 1234, (1234, 1234)),  # an unprivileged user keeps its ids (its files stay its own)
    (1234, 0, (1234, CONTAINER_GID)),  # never group 0 either
])
def test_container_user_is_never_root(uid, gid, expected):
    assert container_user(uid, gid) == expected
    assert 0 not in container_user(uid, gid)


@pytest.mark.skipif(os.getuid() != 0, reason="changing the owner of files needs root")
def test_hand_over_never_follows_a_link(tmp_path):
    """A link in a run directory changes owner itself; its target (a host file) does not."""
    outside = tmp_path / "host_file"
    outside.write_text("host")
    run_dir = tmp_path / "run"
    (run_dir / "sub").mkdir(parents=True)
    (run_dir / "sub" / "f").write_text("x")
    (run_dir / "link").symlink_to(outside)
    (run_dir / "dirlink").symlink_to(tmp_path)
    assert hand_over(run_dir, 1000, 1000) == 5
    assert outside.stat().st_uid == 0 and tmp_path.stat().st_uid == 0  # targets untouched
    assert os.lstat(run_dir / "link").st_uid == 1000 and os.lstat(run_dir / "dirlink").st_uid == 1000
    assert (run_dir / "sub" / "f").stat().st_uid == 1000 and run_dir.stat().st_uid == 1000
    hand_over(run_dir, 0, 0)
    assert all(os.lstat(p).st_uid == 0 for p in [run_dir, *run_dir.rglob("*")])
