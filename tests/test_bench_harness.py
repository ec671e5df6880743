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


def test_orders_let_each_runner_follow_each_other_one_equally_often():
    for n in range(1, 8):
        orders = harness.balanced_orders(n)
        assert all(sorted(order) == list(range(n)) for order in orders)  # every runner once per round
        follows = {}
        for order in orders:
            for before, after in zip(order, order[1:]):
                follows[before, after] = follows.get((before, after), 0) + 1
        assert len(follows) == n * (n - 1) and len(set(follows.values())) <= 1, n


def test_rounds_vary_which_runner_comes_before_which():
    log = []
    harness.interleaved({name: counting(log, name) for name in "abcd"}, repeats=4)
    timed = log[4:]  # after one warm-up each
    predecessors = {name: {timed[i - 1] for i in range(1, len(timed)) if timed[i] == name and i % 4} for name in "abcd"}
    assert all(len(p) == 3 for p in predecessors.values()), predecessors  # rotating one order would give 1
