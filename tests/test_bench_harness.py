"""The benchmark harness: how many rounds it times, and that every runner is interleaved."""

import time

from bench import harness


def counting(log, name, sleep_s=0.0):
    def run():
        log.append(name)
        if sleep_s:
            time.sleep(sleep_s)

    return run


def test_fast_points_get_more_rounds_up_to_the_cap():
    log = []
    out = harness.interleaved(
        {"a": counting(log, "a"), "b": counting(log, "b")}, repeats=3, min_seconds=0.5, max_repeats=40
    )
    assert out["a"]["repeats"] == out["b"]["repeats"] == 40  # microsecond calls: the cap, not 0.5 s of them
    assert log.count("a") == log.count("b") == 41  # plus one warm-up each
    timed = log[2:]
    assert all({timed[2 * r], timed[2 * r + 1]} == {"a", "b"} for r in range(40))  # one call of each per round


def test_slow_points_keep_the_requested_repeats():
    log = []
    out = harness.interleaved({"slow": counting(log, "slow", 0.01)}, repeats=3, min_seconds=0.015, max_repeats=40)
    assert out["slow"]["repeats"] == 3  # a round of >= 10 ms fills 15 ms in 2 rounds: 3 requested stay
    out = harness.interleaved({"slow": counting(log, "slow", 0.01)}, repeats=3)
    assert out["slow"]["repeats"] == 3  # no min_seconds: exactly the repeats asked for


def test_a_failing_runner_is_reported_and_the_others_still_run():
    def broken():
        raise ValueError("no such config")

    log = []
    out = harness.interleaved({"ok": counting(log, "ok"), "bad": broken}, repeats=2, min_seconds=0.0)
    assert out["ok"]["repeats"] == 2 and "no such config" in out["bad"]["error"]
