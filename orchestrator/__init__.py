"""mateval orchestrator: the host side. Finds models (``registry``), runs them on a backend
(``backends``), collects and finalizes their result directories (``results``) and renders reports
(``report``). Command line: ``mateval`` (``orchestrator.cli``)."""

__version__ = "0.1.0"
