"""Report section of regression runs (one real target per crystal): a parity plot."""

from __future__ import annotations

from ..views import Figure, RunView
from .base import Section, parity_figure


class RegressionSection(Section):
    task_type = "regression"

    def figures(self, run: RunView) -> list[Figure]:
        return [parity_figure(run)]
