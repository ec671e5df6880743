"""``semirad demo`` on a tiny configuration: the report's numbers are consistent."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from semirad.analysis import demo

TINY = ["--steps", "6", "--hidden", "4", "--embed", "2", "--length", "6", "--batch", "4", "--trace-every", "3",
        "--probe", "3", "--eval-batches", "3", "--eval-size", "2", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = subprocess.run([sys.executable, "-m", "semirad", "demo", *TINY, "--out", str(out)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out, result.stdout, json.loads((out / "results.json").read_text())


def shares(d):
    total = sum(d["counts"].values())
    return {k: v / total for k, v in d["counts"].items()}


def test_the_tables_are_printed(report):
    _, stdout, results = report
    assert "component importance on the probe batch" in stdout
    for name in ("embed", "lstm/input", "lstm/forget", "lstm/cell", "lstm/output", "head", "loss"):
        assert re.search(rf"^{re.escape(name)}\s+\d+\.\d %\s+\d+\.\d %", stdout, re.M), name
    assert "backprop vs trace per parameter" in stdout and "lstm.weight_hh_l0" in stdout


def test_shares_sum_to_one_and_counts_equal_the_path_edges(report):
    _, _, results = report
    for key in ("trace", "trace_full", "backprop"):
        assert sum(shares(results[key]).values()) == pytest.approx(1.0)
    check = results["check"]
    assert check["shares_sum"] == pytest.approx(1.0)
    assert check["edges_walked"] == check["edges_counted"] == sum(results["trace"]["counts"].values())
    assert check["per_component_equal"] is True
    assert check["paths_walked"] == check["paths"] == results["trace"]["paths"] <= results["parameters"]
    groups = results["by_parameter_group"]
    assert set(groups) == {"embed", "lstm", "head"}
    assert sum(sum(g["counts"].values()) for g in groups.values()) == pytest.approx(check["edges_counted"])
    assert sum(g["paths"] for g in groups.values()) == check["paths"]
    assert sum(results["dataset"]["mean"].values()) == pytest.approx(1.0)
    assert sum(results["dataset"]["backprop_mean"].values()) == pytest.approx(1.0)
    assert results["dataset"]["samples"] == 3
    assert results["history"]["step"] == [0, 3, 6]
    best = results["best_path"]
    assert sum(best["components"].values()) == best["edges"]


def test_the_report_shows_the_same_numbers(report):
    out, _, results = report
    text = (out / "report.md").read_text()
    bp, tr = shares(results["backprop"]), shares(results["trace"])
    for name in tr:
        row = re.search(rf"^\| `{re.escape(name)}` \| ([\d.]+) % \| ([\d.]+) % \| (\d+) \|$", text, re.M)
        assert row, name
        assert float(row.group(1)) == pytest.approx(100 * bp.get(name, 0.0), abs=0.051)
        assert float(row.group(2)) == pytest.approx(100 * tr[name], abs=0.051)
        assert int(row.group(3)) == results["trace"]["counts"][name]
    assert "per component equal: True" in text
    for f in results["files"]["figures"]:
        assert (out / f).exists() and f"({f})" in text
    assert (out / "graph.dot").read_text().startswith("digraph semirad {")
    assert (out / "over_dataset.json").exists()
    compare = {r["param"]: r for r in results["compare"]}
    assert set(compare) == {"embed.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0",
                            "lstm.bias_hh_l0", "head.weight", "head.bias"}  # fmt: skip


def test_figures_are_part_of_the_report_when_matplotlib_is_installed(report):
    pytest.importorskip("matplotlib")
    out, _, results = report
    assert sorted(results["files"]["figures"]) == ["heatmaps_weight_hh.png", "history.png", "importance.png",
                                                   "ratios.png"]  # fmt: skip


def test_device_cuda_without_cupy_is_a_clear_error(tmp_path):
    from semirad import backend

    if backend.cupy is not None:
        pytest.skip("cupy is installed here")
    result = subprocess.run([sys.executable, "-m", "semirad", "demo", "--device", "cuda", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2
    assert "cupy" in result.stderr and "--device cpu" in result.stderr
    assert not (tmp_path / "results.json").exists()


def test_task_and_accuracy_helpers():
    seqs = demo.dyck_batch(np.random.default_rng(0), 50, 10)
    for s in seqs:
        stack = []
        for t in s:
            if t in (0, 2):
                stack.append(t)
            else:
                assert stack and stack.pop() + 1 == t
        assert not stack
    with pytest.raises(ValueError):
        demo.dyck_batch(np.random.default_rng(0), 1, 5)
    model = demo.BracketLM(2, 3)
    assert 0.0 <= demo.closing_accuracy(model, seqs) <= 1.0



def test_the_cli_entry_point_parses_like_semirad_demo_and_exits_2_on_a_bad_configuration(tmp_path):
    args = demo.cli.build_parser().parse_args([*TINY, "--out", str(tmp_path)])
    config = demo.config_from_args(args)
    assert (config.steps, config.hidden, config.probe, config.progress, config.verify) == (6, 4, 3, False, True)
    with pytest.raises(SystemExit) as stop:  # an odd string length: the run stops before training
        demo.main(["--length", "5", "--steps", "0", "--no-progress", "--out", str(tmp_path / "bad")])
    assert stop.value.code == 2
    assert not (tmp_path / "bad" / "results.json").exists()
