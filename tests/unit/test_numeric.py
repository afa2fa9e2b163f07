"""Numbers are checked where they enter: command-line flags (one rule per kind of number, in
runner.numeric), and no JSON file mateval writes holds NaN or Infinity."""

import json
import math

import pytest

from orchestrator import cli
from runner import numeric
from runner.numeric import NumberError
from runner.run import build_parser as runner_parser
from runner.wire import RunSpec


@pytest.mark.parametrize("rule, good, bad", [
    (numeric.INTERVAL, [0.05, 1, 2.5, 3600], [0, -1, 0.01, 3601, math.nan, math.inf, True, "1"]),
    (numeric.TIMEOUT, [0.5, 4, 1800], [0, -1, math.nan, math.inf, -math.inf, 30 * 86400 + 1, False]),
    (numeric.SEED, [0, 1, 2**32 - 1], [-1, 2**32, 1.0, math.nan, True]),
    (numeric.COUNT, [1, 1000], [0, -3, 2.0, math.nan, True, None]),
    (numeric.CPUS, [0.5, 4], [0, -2, math.nan, math.inf]),
])
def test_rules(rule, good, bad):
    for value in good:
        assert rule.check(value, "x") == value
    for value in bad:
        with pytest.raises(NumberError, match=rf"^where: expected {rule.what}"):
            rule.check(value, "where")


def test_rule_in_words():
    assert numeric.INTERVAL.describe() == "a finite number of seconds >= 0.05 and <= 3600"
    assert numeric.COUNT.describe() == "an integer >= 1"
    assert numeric.TIMEOUT.describe() == "a finite number of seconds > 0 and <= 2592000"


def bench(*flags: str):
    return cli.build_parser().parse_args(["bench", "--model", "m", *flags])


def test_good_flags_parse():
    args = bench("--interval", "0.2", "--timeout", "30", "--seed", "0", "--seed", "7", "--num-samples", "5",
                 "--jobs", "2", "--cpus", "1.5", "--memory", "512m", "--max-samples", "train=4,test=2")
    assert (args.interval, args.timeout, args.seed, args.num_samples, args.jobs) == (0.2, 30.0, [0, 7], 5, 2)
    assert (args.cpus, args.memory, args.max_samples) == (1.5, "512m", {"train": 4, "test": 2})
    defaults = bench()
    assert defaults.interval == 1.0 and defaults.timeout is None and defaults.max_samples is None


@pytest.mark.parametrize("flag, value, expected", [
    ("--interval", "0", "a finite number of seconds >= 0.05"),
    ("--interval", "-1", "a finite number of seconds >= 0.05"),
    ("--interval", "nan", "a finite number of seconds >= 0.05"),
    ("--interval", "1e9", "<= 3600"),
    ("--timeout", "nan", "a finite number of seconds > 0"),
    ("--timeout", "inf", "a finite number of seconds > 0"),
    ("--timeout", "-1", "a finite number of seconds > 0"),
    ("--timeout", "0", "a finite number of seconds > 0"),
    ("--num-samples", "0", "an integer >= 1"),
    ("--num-samples", "2.5", "an integer >= 1"),
    ("--jobs", "0", "an integer >= 1"),
    ("--seed", "-1", "an integer >= 0 and <= 4294967295"),
    ("--seed", "x", "an integer >= 0"),
    ("--cpus", "nan", "a finite number of CPUs > 0"),
    ("--cpus", "0", "a finite number of CPUs > 0"),
    ("--memory", "lots", "a memory size"),
    ("--memory", "0g", "a memory size"),
    ("--max-samples", "train=0", "train: expected an integer >= 1"),
    ("--max-samples", "train=nan", "train: expected an integer >= 1"),
    ("--max-samples", "train=true", "train: expected an integer >= 1"),
    ("--max-samples", "tran=5", "expected train=N,val=N,test=N"),
    ("--max-samples", "train=5,train=6", "each split at most once"),
])
def test_bad_flags_stop_the_parser_naming_the_flag(capsys, flag, value, expected):
    with pytest.raises(SystemExit) as info:
        bench(flag, value)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: " in err and expected in err and value.split("=")[-1] in err


def test_runner_command_line_checks_its_numbers(capsys):
    assert runner_parser().parse_args(["--interval", "0.5", "--seed", "3"]).interval == 0.5
    for flag, value in (("--interval", "0"), ("--seed", "-2")):
        with pytest.raises(SystemExit) as info:
            runner_parser().parse_args([flag, value])
        assert info.value.code == 2 and f"argument {flag}: expected" in capsys.readouterr().err


def test_repeated_seed_is_an_error():
    args = bench("--seed", "1", "--seed", "1")
    with pytest.raises(ValueError, match="--seed: repeated seed 1"):
        cli._plan(args)


def test_given_keeps_flag_then_grid_then_default():
    assert cli._given(None, 5, 1) == 5 and cli._given(3, 5) == 3 and cli._given(None, None) is None


@pytest.mark.parametrize("field, value", [("sampling_interval_s", math.nan), ("timeout_s", math.inf),
                                          ("overrides", {"lr": -math.inf})])
def test_run_spec_refuses_nan_and_infinity(tmp_path, field, value):
    spec = RunSpec(run_id="r1", model="m", model_dir="/m", task="t", **{field: value})
    with pytest.raises(ValueError, match=f"run spec r1: field\\(s\\) {field}: NaN or infinity"):
        spec.save(tmp_path / "run_spec.json")
    assert not (tmp_path / "run_spec.json").exists()


def test_run_spec_is_strict_json(tmp_path):
    spec = RunSpec(run_id="r1", model="m", model_dir="/m", task="t", timeout_s=30.0)
    text = spec.to_json()
    assert json.loads(text, parse_constant=lambda name: pytest.fail(name))["timeout_s"] == 30.0
    (tmp_path / "nan.json").write_text(text.replace("30.0", "NaN"))
    with pytest.raises(ValueError, match="nan.json: invalid run spec: NaN is not valid JSON"):
        RunSpec.load(tmp_path / "nan.json")


def test_run_spec_from_json_refuses_nan():
    with pytest.raises(ValueError, match="standard input: invalid run spec: Infinity is not valid JSON"):
        RunSpec.from_json('{"run_id": "r", "model": "m", "model_dir": "/m", "task": "t", "timeout_s": Infinity}',
                          "standard input")
    spec = RunSpec(run_id="r1", model="m", model_dir="/m", task="t", timeout_s=30.0)
    assert RunSpec.from_json(spec.to_json()) == spec
