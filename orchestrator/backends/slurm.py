"""The Slurm backend: every run a Slurm job, a suite one job array per time limit, via submitit.

Flow of :meth:`SlurmBackend.run_all`:

1. every run directory, with its model inputs, is prepared by the orchestrator on the shared file
   system (the results directory must be visible from the nodes, as must, without containers, the
   model environments and this checkout; the data roots need not be: the nodes read ``inputs/``,
   and scoring runs on this host as each job ends);
2. runs are grouped by time limit and each group is submitted as one job array with
   ``submitit.SlurmExecutor.map_array``; each array task calls
   :func:`orchestrator.backends.slurm_node.run_on_node`, which starts the runner on the node:
   ``python -m runner RUN_DIR`` in the model's own environment (``container: none``; see
   :mod:`orchestrator.envs`), or in the model's image with ``apptainer exec --nv``
   (``container: apptainer``) or
   ``srun --container-image`` (``container: pyxis``);
3. the orchestrator polls ``sacct`` (through submitit's watcher, one call for all jobs) and prints
   progress whenever the counts change (pending, running, done, failed);
4. each finished job is finalized and published like any other run: Slurm's final state decides
   the status where the runner could not (``TIMEOUT`` -> ``timeout``, ``CANCELLED`` ->
   ``cancelled``, ``OUT_OF_MEMORY`` -> ``oom``, ``NODE_FAIL``/``PREEMPTED``/``BOOT_FAIL``/``DEADLINE``
   -> ``failed`` naming the state), and the job's own stdout/stderr (which hold Slurm's
   "CANCELLED ... DUE TO TIME LIMIT" lines) are appended to ``run.log`` and kept as
   ``slurm.out`` / ``slurm.err``.

Configuration (:class:`SlurmConfig`) comes from, in increasing priority: a YAML file
(``--slurm-config``, else ``$MATEVAL_SLURM_CONFIG``), the grid file's ``slurm:`` section, and
``--slurm KEY=VALUE`` flags; extra sbatch options go in ``sbatch:`` (``--sbatch KEY=VALUE``).
"""

from __future__ import annotations

import math
import os
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from orchestrator import envs
from orchestrator.backends.base import Backend, RunOutcome
from orchestrator.backends.docker import CONTAINER_RUN_DIR, container_mounts, container_spec
from orchestrator.backends.slurm_node import run_on_node
from orchestrator.registry import REPO_ROOT
from orchestrator.yamlfile import read_yaml, schema_problems
from runner.numeric import Rule
from runner.result import utc_now
from runner import safefiles
from runner.wire import LOG_FILE, RESULT_FILE, SPEC_FILE, RunSpec

#: Slurm states after which a job will not run again
FINAL_STATES = {"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
                "BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT"}
RUNNING_STATES = {"RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STAGE_OUT", "RESIZING", "SIGNALING"}
#: seconds to wait for cancelled jobs to end after an interrupt
CANCEL_WAIT_S = 60.0
#: ``poll_s``: finite, positive, at most an hour between polls
POLL = Rule("a finite number of seconds", exclusive_minimum=0.0, maximum=3600.0)


class SlurmConfigError(ValueError):
    """Invalid Slurm configuration; the message names the source (file or flag) and the field."""


@dataclass
class SlurmConfig:
    """Where and how runs are submitted. Every field can be set in the config file, the grid's
    ``slurm:`` section or with ``--slurm KEY=VALUE``.

    Attributes:
        partition: ``--partition`` (``None``: the cluster's default partition).
        time: time limit in minutes (``--time``); ``None``: the run's timeout rounded up to whole
            minutes (``timeout_s`` of model.yaml, the grid or ``--timeout``).
        gpus: GPUs per job (0: none requested).
        gpu_option: ``"gpus"`` requests them as ``--gpus-per-node=N``, ``"gres"`` as ``--gres=gpu:N``
            (older clusters).
        cpus: ``--cpus-per-task`` (``None``: the cluster's default).
        mem: ``--mem`` per job, e.g. ``"32G"`` (``None``: the cluster's default).
        account: ``--account``.
        qos: ``--qos``.
        sbatch: further sbatch options ``{name: value}`` (e.g. ``{constraint: a100, exclusive: true}``).
        setup: shell lines run before the job's Python starts (e.g. ``module load apptainer``).
        container: ``none`` (the runner in the model's own environment), ``apptainer`` or ``pyxis``.
        image: for containers, the image per model, with ``{model}`` replaced: an Apptainer ``.sif``
            path (``/shared/sif/mateval-{model}.sif``) or a pyxis ``--container-image`` value.
        python: the Python on the nodes that has mateval and submitit (default: this interpreter).
        folder: submitit's folder for job scripts and job logs (default ``<results>/.slurm``).
        poll_s: seconds between ``sacct`` polls.
        array_parallelism: at most this many tasks of an array run at once.
        job_name: the jobs' name in the queue.
    """

    partition: str | None = None
    time: int | None = None
    gpus: int = 0
    gpu_option: str = "gpus"
    cpus: int | None = None
    mem: str | None = None
    account: str | None = None
    qos: str | None = None
    sbatch: dict[str, Any] = field(default_factory=dict)
    setup: list[str] = field(default_factory=list)
    container: str = "none"
    image: str | None = None
    python: str | None = None
    folder: str | None = None
    poll_s: float = 5.0
    array_parallelism: int = 256
    job_name: str = "mateval"

    def updated(self, values: Mapping[str, Any], source: str) -> "SlurmConfig":
        """A copy with ``values`` applied (``gpu-option`` is ``gpu_option``), checked against
        ``orchestrator/schemas/slurm.schema.json``.

        Raises:
            SlurmConfigError: unknown field or wrong type/value, naming ``source`` and the field
                (``grid.yaml: slurm.time: expected a positive integer (minutes), got '2h'``).
        """
        data = asdict(self) | {str(key).replace("-", "_"): value for key, value in values.items()}
        self.check(data, source)
        return SlurmConfig(**data)

    @staticmethod
    def check(data: Mapping[str, Any], source: str) -> None:
        """Raises :class:`SlurmConfigError` unless ``data`` (all fields) is valid Slurm settings."""
        problems = schema_problems(dict(data), "slurm", prefix="slurm")
        if not problems and not POLL.fits(data["poll_s"]):  # the schema lets NaN and inf through
            problems = [f"slurm.poll_s: expected {POLL.describe()}, got {data['poll_s']!r}"]
        if problems:
            raise SlurmConfigError(f"{source}: " + "; ".join(problems))

    def time_limit_min(self, timeout_s: float | None) -> int:
        """The job's ``--time`` in minutes: :attr:`time`, else the run's timeout rounded up."""
        if self.time is not None:
            return self.time
        return max(1, math.ceil((timeout_s or 3600.0) / 60.0))

    def executor_parameters(self, time_min: int) -> dict[str, Any]:
        """Keyword arguments of ``submitit.SlurmExecutor.update_parameters`` for one array."""
        params: dict[str, Any] = {"time": time_min, "job_name": self.job_name, "use_srun": False,
                                  "array_parallelism": self.array_parallelism, "stderr_to_stdout": False}
        for name in ("partition", "mem", "account", "qos"):
            if getattr(self, name):
                params[name] = getattr(self, name)
        if self.cpus:
            params["cpus_per_task"] = self.cpus
        if self.gpus:
            if self.gpu_option == "gres":
                params["gres"] = f"gpu:{self.gpus}"
            else:
                params["gpus_per_node"] = self.gpus
        if self.setup:
            params["setup"] = list(self.setup)
        if self.sbatch:
            params["additional_parameters"] = {str(k).replace("-", "_"): v for k, v in self.sbatch.items()}
        return params


def load_config(path: str | Path | None = None, layers: Sequence[tuple[Mapping[str, Any], str]] = ()) -> SlurmConfig:
    """The configuration from a YAML file (``path``, else ``$MATEVAL_SLURM_CONFIG``, else none),
    then each ``(values, source name)`` layer in order (grid section, command-line flags).

    Raises:
        SlurmConfigError: unreadable file, invalid YAML, unknown field or bad value (source named).
    """
    config = SlurmConfig()
    path = path or os.environ.get("MATEVAL_SLURM_CONFIG")
    if path:
        document = read_yaml(Path(path), SlurmConfigError, "the Slurm configuration") or {}
        if isinstance(document, dict) and set(document) == {"slurm"}:
            document = document["slurm"] or {}
        if not isinstance(document, dict):
            raise SlurmConfigError(f"{path}: expected a mapping of Slurm settings")
        config = config.updated(document, str(path))
    for values, source in layers:
        if values:
            config = config.updated(values, source)
    return config


def node_command(config: SlurmConfig, spec: RunSpec, run_dir: Path) -> tuple[list[str], str | None, str | None]:
    """``(command, working directory, image)`` that starts the runner for ``run_dir`` on a node.

    For containers the run spec in ``run_dir`` must be the container's view
    (:func:`orchestrator.backends.docker.container_spec`); the caller writes it.
    """
    if config.container == "none":
        if config.python:
            return [config.python, "-m", "runner", str(run_dir)], str(REPO_ROOT), None
        model_env = envs.env_for(Path(spec.model_dir))  # created by SlurmBackend.setup before submission
        variables = [f"{name}={value}" for name, value in model_env.variables().items()]
        return ["env", *variables, str(model_env.python), "-m", "runner", str(run_dir)], str(REPO_ROOT), None
    image = config.image.replace("{model}", spec.model)
    mounts = container_mounts(spec, run_dir)
    inner = ["python", "-m", "runner", CONTAINER_RUN_DIR]
    if config.container == "apptainer":
        # --containall: own /tmp, no home, no host processes; --no-privs: no capability even for root;
        # the SIF root file system is read-only, and Apptainer always sets no-new-privileges
        command = ["apptainer", "exec", "--cleanenv", "--containall", "--no-privs", "--pwd", "/opt/mateval"]
        if config.gpus:
            command.append("--nv")
        for host, inside, mode in mounts:
            command += ["--bind", f"{host}:{inside}:{mode}"]
        return command + [image, *inner], None, image
    mount_list = ",".join(f"{host}:{inside}:{mode}" for host, inside, mode in mounts)
    # the invoking user inside (never remapped to root), the image not writable
    return ["srun", "--ntasks=1", f"--container-image={image}", f"--container-mounts={mount_list}",
            "--no-container-remap-root", "--container-readonly", "--container-workdir=/opt/mateval", *inner], None, image


def outcome_from_state(state: str, exit_code: int | None, wall_s: float, info: dict[str, Any]) -> RunOutcome:
    """How a job ended, from Slurm's final ``state`` (``CANCELLED by 0`` -> ``CANCELLED``) and the
    runner's exit status (``None`` when the job function never returned)."""
    word = _state_word(state)
    outcome = RunOutcome(exit_code=exit_code, timed_out=False, wall_s=wall_s, slurm=dict(info, state=state))
    if word == "TIMEOUT":
        outcome.timed_out = True
        outcome.message = f"Slurm time limit of {info.get('time_limit_min')} min"
    elif word == "CANCELLED":
        outcome.cancelled = True
        outcome.message = f"the Slurm job was cancelled ({state})"
    elif word == "OUT_OF_MEMORY":
        outcome.oom_killed = True
        outcome.message = "Slurm state OUT_OF_MEMORY"
    elif word not in ("COMPLETED", "FAILED"):
        outcome.message = f"Slurm ended the job with state {state}"
        outcome.error_type = word.title().replace("_", "")
    return outcome


def _state_word(state: str | None) -> str:
    """``"CANCELLED by 0"`` -> ``"CANCELLED"``; empty -> ``"UNKNOWN"``."""
    return state.split()[0].upper() if state and state.strip() else "UNKNOWN"


class SlurmBackend(Backend):
    """Runs through Slurm (see the module docstring).

    Args:
        config: the Slurm settings.
        say: where progress lines go (the orchestrator's console).
    """

    name = "slurm"

    def __init__(self, config: SlurmConfig | None = None, say: Callable[[str], None] = print):
        self.config = config or SlurmConfig()
        self.say = say

    def time_limit_s(self, timeout_s: float) -> float:
        """Slurm's limit: ``slurm.time`` minutes, else ``timeout_s`` rounded up to whole minutes."""
        return 60.0 * self.config.time_limit_min(timeout_s)

    def run(self, spec: RunSpec, run_dir: Path, timeout_s: float, log_path: Path,
            echo: Callable[[str], None] | None = None) -> RunOutcome:
        """One run as a one-task array; blocks until it ends."""
        outcomes = []
        self.run_all([(spec, Path(run_dir))], lambda s, d, outcome: outcomes.append(outcome))
        return outcomes[0]

    def _prepare(self, spec: RunSpec, run_dir: Path) -> tuple[list[str], str | None, str | None]:
        if self.config.container != "none":
            container_spec(spec, self.name).save(run_dir / SPEC_FILE)
        command, cwd, image = node_command(self.config, spec, run_dir)
        if self.config.container == "apptainer" and not Path(image).is_file():
            raise SlurmConfigError(f"slurm.image: {image} does not exist; build it with `apptainer build {image} "
                                   f"docker-daemon://mateval/{spec.model}:<tag>` (see README, cluster section)")
        return command, cwd, image

    def setup(self, model_folders: Sequence[Path], say: Callable[[str], None]) -> None:
        """Without containers and without a ``python`` setting, create (or find) each model's own
        environment (:mod:`orchestrator.envs`) before anything is submitted; the nodes run the
        runner in it (the environments folder must be on the shared file system)."""
        if self.config.container == "none" and not self.config.python:
            for folder in dict.fromkeys(Path(f) for f in model_folders):
                env = envs.ensure(folder, say)
                say(f"{folder.name}: environment {env.name} ({env.path})")

    def run_all(self, runs: Sequence[tuple[RunSpec, Path]], finished: Callable[[RunSpec, Path, RunOutcome], Any],
                start: Callable[[int, RunSpec], Callable[[str], None] | None] | None = None) -> None:
        """Submit every run (one array per time limit), wait with progress, finalize each as it ends.

        Raises:
            SlurmConfigError: a container image is missing (before anything is submitted).
            RuntimeError: ``sbatch`` refused the submission (its message included).
            KeyboardInterrupt: after cancelling the jobs still queued or running; runs that had
                started are passed to ``finished`` as cancelled, runs never started are not.
        """
        import submitit

        if not runs:
            return
        if shutil.which("sbatch") is None:
            raise RuntimeError("sbatch not found: the Slurm backend needs the Slurm client commands "
                               "(`make local-slurm` starts a one-node cluster on this machine)")
        prepared = {spec.run_id: self._prepare(spec, run_dir) for spec, run_dir in runs}
        results_root = Path(runs[0][1]).resolve().parent.parent
        folder = Path(self.config.folder) if self.config.folder else results_root / ".slurm"
        executor = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=0,
                                          python=shlex.quote(self.config.python or sys.executable))
        groups: dict[int, list[tuple[RunSpec, Path]]] = {}
        for spec, run_dir in runs:
            groups.setdefault(self.config.time_limit_min(spec.timeout_s), []).append((spec, Path(run_dir)))
        tracked = []  # (spec, run_dir, job, info)
        for time_min, members in groups.items():
            executor.update_parameters(**self.config.executor_parameters(time_min))
            commands = [prepared[spec.run_id] for spec, _ in members]
            try:
                jobs = executor.map_array(run_on_node, [str(d.resolve()) for _, d in members],
                                          [c[0] for c in commands], [c[1] for c in commands])
            except Exception as exc:  # submitit raises a plain error with sbatch's message
                raise RuntimeError(f"sbatch refused the job array: {exc}") from exc
            submitted = utc_now()
            for (spec, run_dir), job, (command, _, image) in zip(members, jobs, commands):
                info = {"job_id": str(job.job_id), "partition": self.config.partition, "account": self.config.account,
                        "time_limit_min": time_min, "container": self.config.container, "image": image,
                        "submitted_at": submitted}
                with safefiles.open_append(run_dir / LOG_FILE) as log:  # never through a planted link
                    log.write(f"mateval: {submitted} submitted as Slurm job {job.job_id} (time limit {time_min} min, "
                              f"container {self.config.container}): {' '.join(command)}\n")
                tracked.append((spec, run_dir, job, info))
            self.say(f"slurm: submitted {len(jobs)} run(s) as job array {jobs[0].job_id.split('_')[0]} "
                     f"(time limit {time_min} min, partition {self.config.partition or 'default'})")
        self._wait(tracked, finished)

    @staticmethod
    def _poll(pending, ever_running: set[str]) -> tuple[list, list]:
        """One ``sacct`` call for all of ``pending``: ``(ended as (item, state), still pending)``;
        jobs seen running are added to ``ever_running``."""
        pending[0][2].watcher.update()
        ended, still = [], []
        for item in pending:
            state = item[2].watcher.get_state(item[2].job_id, mode="cache")
            word = _state_word(state)
            if word in RUNNING_STATES:
                ever_running.add(item[2].job_id)
            if word in FINAL_STATES:
                ended.append((item, state))
            else:
                still.append(item)
        return ended, still

    def _wait(self, tracked, finished) -> None:
        begin = time.monotonic()
        pending = list(tracked)
        counts_shown, last_shown, failed, done = None, 0.0, 0, 0
        ever_running: set[str] = set()
        try:
            while pending:
                ended, pending = self._poll(pending, ever_running)
                for (spec, run_dir, job, info), state in ended:
                    status = self._finish(spec, run_dir, job, info, state, time.monotonic() - begin, finished)
                    done += 1
                    failed += status not in ("ok", None)
                running = sum(1 for _, _, job, _ in pending if job.job_id in ever_running)
                counts = (len(pending) - running, running, done, failed)
                if counts != counts_shown or time.monotonic() - last_shown > 60:
                    elapsed = int(time.monotonic() - begin)
                    self.say(f"slurm: {len(tracked)} jobs: {counts[0]} pending, {counts[1]} running, {done} done "
                             f"({failed} not ok) [{elapsed // 60}:{elapsed % 60:02d}]")
                    counts_shown, last_shown = counts, time.monotonic()
                if pending:
                    time.sleep(self.config.poll_s)
        except KeyboardInterrupt:
            self._cancel(pending, ever_running, begin, finished)
            raise

    def _cancel(self, pending, ever_running: set[str], begin: float, finished) -> None:
        """Cancel every unfinished job; finalize those that had started as cancelled."""
        self.say(f"slurm: interrupted: cancelling {len(pending)} job(s)")
        for _, _, job, _ in pending:
            job.cancel(check=False)
        deadline = time.monotonic() + CANCEL_WAIT_S
        while pending and time.monotonic() < deadline:
            ended, pending = self._poll(pending, ever_running)
            for (spec, run_dir, job, info), state in ended:
                if job.job_id in ever_running or (run_dir / RESULT_FILE).exists():
                    self._finish(spec, run_dir, job, info, state, time.monotonic() - begin, finished,
                                 interrupted=True)
            if pending:
                time.sleep(1.0)
        for spec, run_dir, job, info in pending:
            self.say(f"slurm: job {job.job_id} ({spec.run_id}) did not end within {CANCEL_WAIT_S:g} s of scancel")

    def _finish(self, spec: RunSpec, run_dir: Path, job, info: dict, state: str, wall_s: float, finished,
                interrupted: bool = False) -> str | None:
        """Collect the job's logs, finalize the run through ``finished``; the result's status
        (``None`` when ``finished`` returns no result)."""
        exit_code = None
        if job.paths.result_pickle.exists():
            try:
                exit_code = int(job.result())
            except Exception as exc:  # the job function raised (e.g. the runner could not be started)
                try:
                    with safefiles.open_append(run_dir / LOG_FILE) as log:  # never through a planted link
                        log.write(f"mateval: the Slurm job function failed: {exc}\n")
                except OSError:
                    pass
        node = job.watcher.get_info(job.job_id, mode="cache").get("NodeList")
        info = dict(info, node=node if node and node != "None assigned" else None, exit_code=exit_code)
        try:
            self._collect_job_logs(job, run_dir, state)
        except OSError as exc:  # e.g. run.log replaced by a link: finalize records it; the suite goes on
            self.say(f"slurm: {run_dir.name}: the job's logs could not be appended to {LOG_FILE}: {exc}")
        outcome = outcome_from_state(state, exit_code, wall_s, info)
        if interrupted:
            outcome.cancelled = True
            outcome.message = f"the orchestrator was interrupted; the Slurm job was cancelled ({state})"
        result = finished(spec, run_dir, outcome)
        return result.get("status") if isinstance(result, dict) else None

    @staticmethod
    def _collect_job_logs(job, run_dir: Path, state: str) -> None:
        """Copy the job's stdout/stderr into the run directory and append their tails to run.log."""
        with safefiles.open_append(run_dir / LOG_FILE) as log:  # never through a planted link
            log.write(f"mateval: {utc_now()} Slurm job {job.job_id} ended with state {state}\n")
            for source, name in ((job.paths.stdout, "slurm.out"), (job.paths.stderr, "slurm.err")):
                if not Path(source).exists():
                    continue
                shutil.copyfile(source, run_dir / name)
                lines = Path(source).read_text(errors="replace").splitlines()[-15:]
                if lines:
                    log.write(f"---- {name} (Slurm job {job.job_id}), last {len(lines)} lines ----\n")
                    log.write("\n".join(lines) + "\n")


__all__ = ["SlurmBackend", "SlurmConfig", "SlurmConfigError", "load_config", "node_command", "outcome_from_state"]
