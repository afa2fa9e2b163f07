"""Where a run happens: ``local`` (a subprocess of this environment); ``docker`` and ``slurm`` follow."""

from orchestrator.backends.base import Backend, RunOutcome
from orchestrator.backends.local import LocalBackend

BACKENDS = {"local": LocalBackend}


def get_backend(name: str) -> Backend:
    """Backend by name; ``auto`` picks the best available (today: ``local``).

    Raises:
        ValueError: unknown backend name.
    """
    if name == "auto":
        name = "local"
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; available: auto, {', '.join(BACKENDS)}")
    return BACKENDS[name]()


__all__ = ["Backend", "RunOutcome", "LocalBackend", "get_backend", "BACKENDS"]
