"""The Docker backend: every model in its own image, run through the Docker SDK for Python.

For a run: build (or reuse) ``mateval/base`` and ``mateval/<model>`` (:mod:`orchestrator.images`),
rewrite the run spec to the container's paths, and start the model image's entry point (the
runner) with:

- GPUs through ``device_requests`` (all by default, ``gpus="0,1"`` for a list, none when the host
  has no NVIDIA driver, with a message); NVML inside a container cannot see host PIDs, so the
  runner samples GPUs per device;
- only the run directory mounted (read-write at ``/mateval/run``): the model stage reads its
  inputs there (``inputs/``: no test targets); the datasets and the scoring cache (reference
  fingerprints) are not mounted, since scoring runs on the host after the container ended;
  ``shm_size`` for PyTorch data loaders; optional memory and CPU limits;
- confined whoever starts it (:meth:`DockerBackend.container_options`): an unprivileged uid:gid
  inside, never 0 (:func:`container_user`: the base image's user ``1000:1000`` when mateval runs
  as root, the invoking user's own uid:gid otherwise), all capabilities dropped, no new
  privileges, a read-only root file system with a tmpfs at ``/tmp`` for scratch (``HOME`` and
  the matplotlib, torch and XDG caches point there), a pids limit, no Docker socket, not
  privileged, no network (a run needs none). When the container user differs from the invoking
  user, the run directory is handed to it before the start and every file in it back to the
  invoking user after the container ended (:func:`hand_over`, never following a link);
- Docker's init (``init=True``) as PID 1, so that the runner is an ordinary process: signals
  reach it with their default meaning (the kernel ignores a SIGKILL a PID 1 sends itself) and
  its children are reaped;
- the run's timeout through ``container.wait(timeout=...)``; on expiry the container is stopped
  (SIGTERM, the runner writes its result, then SIGKILL after a grace period);
- its log streamed to the run log; the container is always removed afterwards (not with
  ``auto_remove``, which would lose the logs and the exit state);
- no orphan: the orchestrator holds the container's standard input open through an attached
  socket (``stdin_open`` with ``stdin_once``) and the runner watches it
  (``MATEVAL_STDIN_WATCHDOG=1``, :func:`runner.__main__.watch_stdin`). Whatever ends the
  orchestrator, ``kill -9`` included, the kernel closes that socket, the daemon closes the
  container's standard input and the runner stops (SIGTERM to itself, SIGKILL after a grace
  period), so the container exits. The next ``bench`` in the same results directory removes such
  a left-over container (:func:`remove_orphans`, by the labels ``org.mateval.run_id`` and
  ``org.mateval.results``) when no live orchestrator owns its run.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import Callable

from orchestrator.backends.base import Backend, RunOutcome, keep_log
from orchestrator.images import DEFAULT_BASE_IMAGE, ensure_model_image
from runner.wire import SPEC_FILE, RunSpec

#: the labels every run's container carries: its run id and its results directory
RUN_LABEL = "org.mateval.run_id"
RESULTS_LABEL = "org.mateval.results"
#: the runner's standard-input watchdog switch (see runner/__main__.py; not imported: the runner
#: package's entry point is the container's, not the host's)
WATCHDOG_ENV = "MATEVAL_STDIN_WATCHDOG"

CONTAINER_RUN_DIR = "/mateval/run"
CONTAINER_IMAGES = "/opt/mateval/images"
GRACE_S = 15
#: the base image's unprivileged user (images/base/Dockerfile), used inside when mateval runs as root
CONTAINER_UID = CONTAINER_GID = 1000
#: most processes and threads a run's container may hold (a fork bomb stops there)
PIDS_LIMIT = 4096
#: the only writable place besides the run directory (the root file system is read-only)
SCRATCH_DIR = "/tmp"


def container_user(uid: int | None = None, gid: int | None = None) -> tuple[int, int]:
    """The ``(uid, gid)`` a run's container runs as, given the invoking user's (default: this
    process's). Never 0: root (uid 0) maps to the base image's user ``CONTAINER_UID:CONTAINER_GID``
    (1000:1000); any other user keeps its own uid, so that its files stay its own without a change
    of owner (a non-root user could not hand them back), and gets group 1000 instead of group 0."""
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    if uid == 0:
        return CONTAINER_UID, CONTAINER_GID
    return uid, gid if gid != 0 else CONTAINER_GID


def hand_over(run_dir: Path, uid: int, gid: int) -> int:
    """Give ``run_dir`` and everything under it to ``uid:gid`` without following a symbolic link
    (``os.lchown`` on every entry; a link itself changes owner, never its target, and a linked
    directory is not entered). Used before a container starts (to its user) and after it ended
    (back to the invoking user). Returns the number of entries changed.

    Raises:
        OSError: an entry cannot be changed (e.g. not running as root).
    """
    run_dir = Path(run_dir)
    count = 0
    os.lchown(run_dir, uid, gid)
    for root, dirs, files in os.walk(run_dir, followlinks=False):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)
            count += 1
    return count + 1


def container_mounts(spec: RunSpec, run_dir: Path) -> list[tuple[str, str, str]]:
    """``(host path, container path, "rw" | "ro")`` of a run in a model image, for any container
    runtime (Docker, Apptainer, pyxis): only the run directory, read-write at ``/mateval/run``. The
    model stage reads its inputs from there (``inputs/``, no test targets); the datasets and the
    scoring cache stay on the host, where the scoring stage reads them."""
    return [(str(Path(run_dir).resolve()), CONTAINER_RUN_DIR, "rw")]


def container_spec(spec: RunSpec, backend: str) -> RunSpec:
    """The spec as a model image sees it: the model folder at ``/opt/mateval/images/<model>``, no
    data roots, no scoring cache (:meth:`runner.wire.RunSpec.for_model`)."""
    return dataclasses.replace(spec.for_model(), model_dir=f"{CONTAINER_IMAGES}/{spec.model}", backend=backend)


def close_lifeline(sock) -> None:
    """Close the socket attached to a container's standard input (docker-py's ``attach_socket``
    answer: a ``socket.SocketIO`` whose ``close`` alone leaves the connection open while the HTTP
    response still refers to it), so that the daemon closes that standard input at once."""
    import socket

    raw = getattr(sock, "_sock", sock)
    try:
        raw.shutdown(socket.SHUT_RDWR)
    except (OSError, AttributeError):
        pass
    for closable in (sock, raw):
        try:
            closable.close()
        except (OSError, AttributeError):
            pass


class DockerUnavailable(RuntimeError):
    """No Docker daemon answers (the message says how to start one)."""


def docker_client(timeout: int = 60):
    """A Docker client from the environment (``DOCKER_HOST`` or the default socket).

    Raises:
        DockerUnavailable: the daemon does not answer.
    """
    import docker

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except Exception as exc:  # docker raises DockerException, requests errors, FileNotFoundError...
        raise DockerUnavailable(f"no Docker daemon answers ({type(exc).__name__}: {exc}); start dockerd or use "
                                "--backend local") from exc


def gpu_requests(gpus: str | None, probe=None):
    """``device_requests`` for ``gpus`` (``"all"``, ``"none"`` or ``"0,1"``) and a message.

    Returns ``([], reason)`` when the host has no NVIDIA driver or ``gpus == "none"``.
    """
    import docker.types

    from runner.telemetry import probe_gpus

    if gpus in (None, "", "all"):
        probe = probe or probe_gpus()
        if not probe.devices:
            return [], f"no GPU passed to the container: {probe.reason}"
        return [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])], f"all GPUs ({len(probe.devices)})"
    if gpus == "none":
        return [], "GPUs disabled (--gpus none)"
    ids = [g.strip() for g in gpus.split(",") if g.strip()]
    return [docker.types.DeviceRequest(device_ids=ids, capabilities=[["gpu"]])], f"GPUs {','.join(ids)}"


class DockerBackend(Backend):
    """Runs the runner in the model's container (see the module docstring).

    Args:
        base_image: the parent of ``images/base`` (default: an official CUDA PyTorch image; here
            ``mateval/local-base:latest``).
        gpus: ``"all"``, ``"none"`` or a comma-separated list of GPU indices.
        memory: container memory limit (Docker syntax, ``"8g"``) or ``None``.
        cpus: CPU limit (e.g. ``2.0``) or ``None``.
        shm_size: ``/dev/shm`` size for data loaders.
        client: a ``docker.DockerClient`` (default: :func:`docker_client`).
    """

    name = "docker"

    def __init__(self, base_image: str = DEFAULT_BASE_IMAGE, gpus: str | None = "all", memory: str | None = None,
                 cpus: float | None = None, shm_size: str = "2g", client=None):
        self.base_image = base_image
        self.gpus, self.memory, self.cpus, self.shm_size = gpus, memory, cpus, shm_size
        self._client = client

    @property
    def client(self):
        """The Docker client (connected on first use)."""
        if self._client is None:
            self._client = docker_client()
        return self._client

    def container_options(self, spec: RunSpec, run_dir: Path, image, device_requests: list) -> dict:
        """Keyword arguments of ``containers.create`` for a run (also what the tests inspect): the
        confinement of the module docstring (user from :func:`container_user`, ``cap_drop=["ALL"]``,
        ``read_only`` with a tmpfs at :data:`SCRATCH_DIR`, :data:`PIDS_LIMIT`, no network, only the
        run directory mounted, ``no-new-privileges``) plus the backend's GPU, memory and CPU limits,
        and the open standard input the runner's watchdog watches (``stdin_open`` with
        ``detach=False``, for which docker-py sets ``StdinOnce``)."""
        volumes = {host: {"bind": inside, "mode": mode} for host, inside, mode in container_mounts(spec, run_dir)}
        uid, gid = container_user()
        environment = {"HOME": SCRATCH_DIR, "MPLCONFIGDIR": f"{SCRATCH_DIR}/matplotlib",
                       "XDG_CACHE_HOME": f"{SCRATCH_DIR}/.cache", "TORCH_HOME": f"{SCRATCH_DIR}/torch",
                       "MATEVAL_GIT_SHA": spec.git_sha or "", "PYTHONUNBUFFERED": "1", WATCHDOG_ENV: "1"}
        labels = {RUN_LABEL: spec.run_id, RESULTS_LABEL: str(Path(run_dir).resolve().parent.parent)}
        # detach=False: docker-py then sets StdinOnce (stdin closes when our attached socket does)
        options = dict(image=image.id, command=[CONTAINER_RUN_DIR], detach=False, user=f"{uid}:{gid}",
                       volumes=volumes, shm_size=self.shm_size, network_disabled=True, privileged=False,
                       environment=environment, labels=labels, stdin_open=True,
                       device_requests=device_requests, cap_drop=["ALL"], read_only=True,
                       tmpfs={SCRATCH_DIR: "rw,exec,nosuid,nodev,mode=1777"}, pids_limit=PIDS_LIMIT,
                       security_opt=["no-new-privileges"], name=f"mateval-{spec.run_id}"[:128],
                       init=True)
        if self.memory:
            options["mem_limit"] = self.memory
            options["memswap_limit"] = self.memory  # no swap: exceeding the limit is an OOM, not a slowdown
        if self.cpus:
            options["nano_cpus"] = int(self.cpus * 1e9)
        return options

    def clean_orphans(self, results_root: Path, live_run_ids: set[str]) -> list[str]:
        """Remove every container of a run of ``results_root`` (label ``org.mateval.results``) that
        no live orchestrator owns (its run id not in ``live_run_ids``): what a ``kill -9`` of the
        orchestrator leaves (the runner's watchdog has stopped it by then, or is about to). One line
        per container removed; nothing when the Docker engine cannot be reached (the run itself
        will say so)."""
        import docker.errors

        try:
            containers = self.client.containers.list(
                all=True, filters={"label": f"{RESULTS_LABEL}={Path(results_root).resolve()}"})
        except (RuntimeError, docker.errors.DockerException):
            return []
        lines = []
        for container in containers:
            run_id = container.labels.get(RUN_LABEL, "")
            if run_id in live_run_ids:
                continue
            try:
                status = container.status
                container.remove(force=True)
            except docker.errors.NotFound:  # removed meanwhile by its own orchestrator
                continue
            except docker.errors.DockerException as exc:
                lines.append(f"cannot remove the container {container.short_id} left by run {run_id}: {exc}")
                continue
            lines.append(f"container {container.short_id} of run {run_id} ({status}; the orchestrator that "
                         f"started it is gone): removed")
        return lines

    def container_spec(self, spec: RunSpec) -> RunSpec:
        """The spec as the container sees it (see :func:`container_spec`)."""
        return container_spec(spec, self.name)

    def run(self, spec: RunSpec, run_dir: Path, timeout_s: float, log_path: Path,
            echo: Callable[[str], None] | None = None) -> RunOutcome:
        import docker.errors
        import requests.exceptions

        from orchestrator.images import ImageBuildError

        start = time.monotonic()
        details = {"base_image": self.base_image, "gpus": self.gpus, "memory_limit": self.memory, "cpus": self.cpus}
        with open(log_path, "a+", buffering=1) as log:  # "+": keep_log reads it back
            def say(line: str) -> None:
                log.write(line + "\n")
                if echo:
                    echo(line)

            try:
                client = self.client
                version = client.version()
                details["docker_version"] = version.get("Version")
                image, _ = ensure_model_image(client, Path(spec.model_dir), spec.model, self.base_image,
                                              Path(run_dir) / "build.log", say)
            except (ImageBuildError, RuntimeError, docker.errors.DockerException) as exc:
                say(f"mateval: cannot prepare the container: {exc}")
                return RunOutcome(exit_code=None, timed_out=False, wall_s=time.monotonic() - start,
                                  message=f"image build failed: {exc}", details=details)
            details.update(image=image.tags[0] if image.tags else image.id, image_id=image.id)
            device_requests, gpu_message = gpu_requests(self.gpus)
            from runner.telemetry import probe_gpus

            details["gpu_driver"] = probe_gpus().driver_version
            say(f"mateval: {gpu_message}")
            self.container_spec(spec).save(Path(run_dir) / SPEC_FILE)
            options = self.container_options(spec, run_dir, image, device_requests)
            owner = (os.getuid(), os.getgid())
            inside = tuple(int(part) for part in options["user"].split(":"))
            handed = inside[0] != owner[0]  # mateval runs as root: the run directory goes to the container's user
            if handed:
                hand_over(run_dir, *inside)
            lifeline = None
            try:
                container = client.containers.create(**options)
                try:  # attached before the start: its end is the end of the runner's standard input
                    lifeline = client.api.attach_socket(container.id, params={"stdin": 1, "stream": 1})
                    container.start()
                except BaseException:
                    container.remove(force=True)
                    raise
            except BaseException:
                if lifeline is not None:
                    close_lifeline(lifeline)
                if handed:
                    hand_over(run_dir, *owner)
                raise
            say(f"mateval: container {container.short_id} from {details['image']} ({image.id[:19]})")

            def pump() -> None:
                try:
                    for chunk in container.logs(stream=True, follow=True):
                        for line in chunk.decode(errors="replace").splitlines():
                            log.write(line + "\n")
                            if echo:
                                echo(line)
                except Exception as exc:  # the daemon closed the stream; the run's end is decided below
                    log.write(f"mateval: log stream ended: {exc}\n")

            reader = threading.Thread(target=pump, name="container-log", daemon=True)
            reader.start()
            timed_out, exit_code = False, None
            try:
                exit_code = container.wait(timeout=timeout_s)["StatusCode"]
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                timed_out = True
                log.write(f"mateval: timeout after {timeout_s:g} s: stopping the container\n")
                container.stop(timeout=GRACE_S)
                exit_code = container.wait(timeout=GRACE_S + 30)["StatusCode"]
            except BaseException:
                container.stop(timeout=GRACE_S)
                raise
            finally:
                reader.join(timeout=10)
                keep_log(log, log_path)
                try:
                    container.reload()
                    state = container.attrs.get("State", {})
                    details["oom_killed"] = bool(state.get("OOMKilled"))
                finally:
                    try:
                        close_lifeline(lifeline)
                        container.remove(force=True)
                    finally:
                        if handed:  # the files back to the invoking user, links not followed
                            hand_over(run_dir, *owner)
        details["exit_code"] = exit_code
        return RunOutcome(exit_code=exit_code, timed_out=timed_out, wall_s=time.monotonic() - start,
                          oom_killed=details.get("oom_killed", False), details=details)
