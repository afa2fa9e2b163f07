"""runner.progress: the progress lines of long loops (elapsed time and an estimate of what remains)."""

import pytest

from runner.progress import Progress, duration_text, remaining_s, status_line, track


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_duration_text_units_and_bad_values():
    assert duration_text(0) == "0.0 s" and duration_text(4.24) == "4.2 s"
    assert duration_text(64) == "1 min 4 s" and duration_text(7500) == "2 h 5 min"
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite number of seconds"):
            duration_text(bad)


def test_remaining_is_a_linear_extrapolation():
    assert remaining_s(0, 10, 5.0) is None and remaining_s(3, 0, 5.0) is None
    assert remaining_s(4, 10, 8.0) == pytest.approx(12.0)  # 2 s an item, 6 items left
    assert remaining_s(10, 10, 8.0) == 0.0


def test_status_line_with_and_without_a_total():
    assert status_line("graph building", 312, 800, 6.1) == \
        "graph building 312/800 (39 %), 6.1 s elapsed, about 9.5 s left"
    assert status_line("graph building", 800, 800, 15.6) == "graph building 800/800 (100 %), 15.6 s elapsed"
    assert status_line("sampling", 7, 0, 70.0) == "sampling 7 done, 1 min 10 s elapsed"


def test_a_line_at_most_every_interval_and_one_at_the_end():
    clock, lines = Clock(), []
    progress = Progress("fingerprinting", 10, every_s=5, write=lines.append, clock=clock)
    for _ in range(10):
        clock.now += 2
        progress.update()
    progress.close()
    # lines at 6 s (3 done), 12 s (6 done), 18 s (9 done), and the end at 20 s
    assert lines == ["fingerprinting 3/10 (30 %), 6.0 s elapsed, about 14.0 s left",
                     "fingerprinting 6/10 (60 %), 12.0 s elapsed, about 8.0 s left",
                     "fingerprinting 9/10 (90 %), 18.0 s elapsed, about 2.0 s left",
                     "fingerprinting 10/10 (100 %), 20.0 s elapsed"]


def test_short_work_stays_quiet():
    clock, lines = Clock(), []
    progress = Progress("quick", 3, every_s=5, write=lines.append, clock=clock)
    for _ in range(3):
        clock.now += 1
        progress.update()
    progress.close()
    assert lines == []


def test_track_yields_every_item_and_reports(capsys):
    assert list(track(range(4), "counting", every_s=0)) == [0, 1, 2, 3]
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("mateval: counting 1/4 (25 %)") and err[-1].startswith("mateval: counting 4/4 (100 %)")
    assert list(track(iter("ab"), "letters", every_s=0)) == ["a", "b"]
    assert "letters 2 done" in capsys.readouterr().err


def test_the_end_is_not_said_twice():
    clock, lines = Clock(), []
    progress = Progress("generating crystals", 2, every_s=5, write=lines.append, clock=clock)
    clock.now += 60
    progress.update(2)  # one chunk of all the work, after a minute
    progress.close()
    assert lines == ["generating crystals 2/2 (100 %), 1 min 0 s elapsed"]
