"""Run deepmd-kit's PyTorch backend without its compiled op library (``libdeepmd_op_pt.so``).

deepmd-kit 3.2.0's wheel ships ``libdeepmd_op_pt.so`` built against torch 2.11; mateval's
environments have torch 2.13, against which that library does not load, and
``deepmd/pt/cxx_op.py`` (imported by ``deepmd/pt/__init__.py``) raises instead of falling back.
deepmd-kit has no environment variable to skip the library: its own fallback is the case where the
library file is absent (``load_library`` returns False and ``ENABLE_CUSTOMIZED_OP`` is False),
in which every PyTorch model uses its pure-PyTorch code path; the op library only serves
LAMMPS's multi-rank message passing (``border_op``) and model compression (tabulation), neither of
which mateval uses. This module reproduces exactly that state without touching the installed
package: it registers a ``deepmd.pt.cxx_op`` module with ``ENABLE_CUSTOMIZED_OP = False`` before
``deepmd.pt`` is imported. The same module also skips the wheel's ``load_mpi_library`` (the
cibuildwheel build looks up the ``mpich`` distribution, which only deepmd-kit's ``[torch]`` extra
installs).

Import this module before anything from ``deepmd.pt``; it raises ``RuntimeError`` if ``deepmd.pt``
was already imported with the real op module.

``python -m dpa2_adapter.pure ARGS...`` is deepmd-kit's ``dp ARGS...`` (``deepmd.main.main``) in
this state, e.g. ``python -m dpa2_adapter.pure --pt train input.json``.
"""

from __future__ import annotations

import sys
import types

_NAME = "deepmd.pt.cxx_op"


def install() -> None:
    """Register the op-less ``deepmd.pt.cxx_op`` (idempotent).

    Raises:
        RuntimeError: ``deepmd.pt.cxx_op`` was already imported from the installed package.
    """
    existing = sys.modules.get(_NAME)
    if existing is not None:
        if getattr(existing, "__mateval_pure__", False):
            return
        raise RuntimeError("deepmd.pt.cxx_op was imported before dpa2_adapter.pure: import dpa2_adapter.pure "
                           "first (deepmd-kit's torch-2.11 op library must not be loaded under torch 2.13)")
    module = types.ModuleType(_NAME, "deepmd-kit's op module with the compiled library absent (mateval).")
    module.ENABLE_CUSTOMIZED_OP = False
    module.__all__ = ["ENABLE_CUSTOMIZED_OP"]
    module.__mateval_pure__ = True
    sys.modules[_NAME] = module


install()


def main(argv: list[str] | None = None) -> None:
    """deepmd-kit's ``dp`` command line (``deepmd.main.main``) without the compiled op library."""
    from deepmd.main import main as dp_main

    dp_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
