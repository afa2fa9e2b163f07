"""mateval runner: the in-container half of mateval.

It loads a model folder through its manifest (``runner.manifest``), loads the task's data
(``runner.datasets``), trains and predicts under resource telemetry (``runner.telemetry``), counts
parameters and FLOPs (``runner.profiling``), scores with ``metrics`` (``runner.tasks``) and writes one
result directory (``runner.result``). It never imports ``orchestrator``.
"""

__version__ = "0.1.0"
