"""Report sections by task type: the registry the generic report code asks.

``SECTIONS`` maps a task type to its :class:`Section`; the built-in ones are registered here, a
plugin registers its own with :func:`register`. The report never branches on the task type: it
calls :func:`section_for`, which gives a :class:`FallbackSection` for a task type without a section.
"""

from __future__ import annotations


from .base import FallbackSection, Overview, Section, parity_figure
from .classification import ClassificationSection
from .generation import GenerationSection
from .potential import PotentialSection
from .regression import RegressionSection
from .spectra import SpectraSection

__all__ = ["Section", "FallbackSection", "Overview", "SECTIONS", "register", "section_for", "parity_figure", "load_plugins"]

SECTIONS: dict[str, Section] = {}


def register(task_type: str, section: Section, *, replace: bool = False) -> Section:
    """Show runs of ``task_type`` with ``section``; returns it.

    Raises:
        ValueError: ``task_type`` already has a section (unless ``replace``).
        TypeError: ``section`` is not a :class:`Section`.
    """
    if not isinstance(section, Section):
        raise TypeError(f"report section of {task_type!r} must be a Section instance, got {type(section).__name__}")
    if task_type in SECTIONS and not replace:
        raise ValueError(f"task type {task_type!r} already has a report section ({type(SECTIONS[task_type]).__name__})")
    section.task_type = task_type
    SECTIONS[task_type] = section
    return section


PLUGINS_VARIABLE = "MATEVAL_REPORT_PLUGINS"


def load_plugins(names: str | None = None) -> list[str]:
    """Import the report plugins named in ``names`` (default: ``$MATEVAL_REPORT_PLUGINS``,
    comma-separated importable modules), once each; each calls :func:`register` at import. The
    runner's plugins (``$MATEVAL_PLUGINS``: task types and their catalogue entries) are loaded too.

    Raises:
        ImportError: a plugin cannot be imported (its name in the message).
    """
    from runner.plugins import import_plugins
    from runner.tasks import load_plugins as load_runner_plugins

    load_runner_plugins()
    return import_plugins(PLUGINS_VARIABLE, names)


def section_for(task_type: str) -> Section:
    """The section of ``task_type`` (loading the plugins first if it has none yet), or a
    :class:`FallbackSection` for an unknown one."""
    if task_type not in SECTIONS:
        load_plugins()
    section = SECTIONS.get(task_type)
    if section is None:
        section = FallbackSection()
        section.task_type = task_type
    return section


for _section in (RegressionSection(), ClassificationSection(), GenerationSection(), SpectraSection(),
                 PotentialSection()):
    register(_section.task_type, _section)
