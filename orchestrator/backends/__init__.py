"""Where a run happens: ``local`` (a subprocess of this environment), ``docker`` (the model's
container) or ``slurm`` (a Slurm job, see :mod:`orchestrator.backends.slurm`); ``auto`` picks
Docker when a daemon answers and the base image is present, else local."""

from __future__ import annotations

from orchestrator.backends.base import Backend, RunOutcome
from orchestrator.backends.local import LocalBackend

BACKENDS = ("local", "docker", "slurm")


def get_backend(name: str, base_image: str | None = None, gpus: str | None = "all", memory: str | None = None,
                cpus: float | None = None, slurm=None, say=print) -> tuple[Backend, str]:
    """The backend called ``name`` and a sentence saying what was chosen and why.

    ``auto`` is Docker when a daemon answers and the base image is already on this host (a run
    must not wait on a registry that may be unreachable), else local. ``slurm`` takes its settings
    from ``slurm`` (a :class:`orchestrator.backends.slurm.SlurmConfig`) and prints progress with ``say``.

    Raises:
        ValueError: unknown backend name.
        orchestrator.backends.docker.DockerUnavailable: ``docker`` asked for and no daemon answers.
    """
    from orchestrator.images import DEFAULT_BASE_IMAGE

    base_image = base_image or DEFAULT_BASE_IMAGE
    if name not in ("auto", *BACKENDS):
        raise ValueError(f"unknown backend {name!r}; available: auto, {', '.join(BACKENDS)}")
    if name == "local":
        return LocalBackend(), "backend local"
    if name == "slurm":
        from orchestrator.backends.slurm import SlurmBackend, SlurmConfig

        config = slurm or SlurmConfig()
        where = f"partition {config.partition}" if config.partition else "the default partition"
        return SlurmBackend(config, say), f"backend slurm ({where}, container {config.container})"
    from orchestrator.backends.docker import DockerBackend, DockerUnavailable, docker_client

    if name == "docker":
        return (DockerBackend(base_image, gpus, memory, cpus, client=docker_client()),
                f"backend docker (base image {base_image})")
    try:
        client = docker_client(timeout=10)
    except DockerUnavailable as exc:
        return LocalBackend(), f"backend auto -> local ({exc})"
    import docker.errors

    try:
        client.images.get(base_image)
    except docker.errors.ImageNotFound:
        return LocalBackend(), (f"backend auto -> local: a Docker daemon answers but the base image {base_image} "
                                "is not on this host; use --backend docker to pull it, or BASE_IMAGE="
                                "mateval/local-base:latest after `make local-base-image`")
    return DockerBackend(base_image, gpus, memory, cpus, client=client), f"backend auto -> docker (base image {base_image})"


__all__ = ["Backend", "RunOutcome", "LocalBackend", "get_backend", "BACKENDS"]
