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


def test_blocks_settle_then_time_each_runner_in_balanced_turns():
    """in_blocks: each runner's timed calls come after it ran alone for the settling time, every runner gets
    ``rounds * calls`` of them, and the turns follow the balanced orders."""
    log = []  # (runner, start, end) of every call, warm-up and settling included

    def runner(name, seconds):
        def call():
            start = time.perf_counter()
            time.sleep(seconds)
            log.append((name, start, time.perf_counter()))

        return call

    runners = {"a": runner("a", 0.001), "b": runner("b", 0.002), "c": runner("c", 0.001)}
    settle, rounds, calls = 0.02, 6, 2
    out = harness.in_blocks(runners, rounds=rounds, calls=calls, settle_s=settle)

    assert {name: r["repeats"] for name, r in out.items()} == {"a": 12, "b": 12, "c": 12}
    assert out["b"]["median_s"] > out["a"]["median_s"]  # the slower runner measured slower

    body = log[3:]  # after one warm-up call each
    blocks = []  # consecutive calls of one runner
    for name, start, end in body:
        if blocks and blocks[-1][0] == name:
            blocks[-1][1].append((start, end))
        else:
            blocks.append((name, [(start, end)]))
    names = list(runners)
    orders = harness.balanced_orders(3)
    turns = [names[i] for r in range(rounds) for i in orders[r % len(orders)]]
    # (a round may end with the runner the next one starts with: their two blocks then run back to back)
    merged = [name for k, name in enumerate(turns) if k == 0 or turns[k - 1] != name]
    assert [b[0] for b in blocks] == merged
    for _, spans in blocks:
        untimed, timed = spans[:-calls], spans[-calls:]
        assert untimed, "no settling call before the timed ones"
        assert timed[0][0] - spans[0][0] >= settle  # the timed calls start after the settling time


def test_no_settling_when_settle_is_zero():
    counts = {"a": 0, "b": 0}

    def call(name):
        def run():
            counts[name] += 1

        return run

    out = harness.in_blocks({"a": call("a"), "b": call("b")}, rounds=3, calls=4, settle_s=0.0, warmup=2)
    assert counts == {"a": 2 + 3 * 4, "b": 2 + 3 * 4}
    assert out["a"]["repeats"] == out["b"]["repeats"] == 12
