"""``semirad demo --model transformer``: the agreement data, a tiny run end to end, the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import semirad as sr
from semirad.analysis.demo import agreement, cli
from semirad.analysis.demo.config import DemoConfig, TransformerConfig
from semirad.analysis.demo.transformer_run import BRANCHES, branch_plan, selectors, walk_counts

TINY = ["--model", "transformer", "--steps", "3", "--batch", "4", "--d-model", "8", "--heads", "2", "--ff", "8",
        "--max-length", "12", "--eval", "3", "--k", "2", "--no-progress"]  # fmt: skip

SINGULAR = {"dog", "cat", "key", "author", "bird", "car", "tree", "farmer"}
PLURAL = {w + "s" for w in SINGULAR}


def _number(word: str):
    """0 singular noun, 1 plural noun, None otherwise: from the words, not from the module's tables."""
    return 0 if word in SINGULAR else 1 if word in PLURAL else None


# -- the data ------------------------------------------------------------------------------------
def test_generated_sentences_agree_with_their_subject_across_attractors():
    data = agreement.agreement_batch(np.random.default_rng(7), 600)
    seen_attractors = set()
    for i in range(len(data)):
        words = [agreement.WORDS[t] for t in data.tokens[i]]
        length = int(data.lengths[i])
        assert 8 <= length <= 16
        assert all(w == "[pad]" for w in words[length:]) and "[pad]" not in words[:length]
        words = words[:length]
        assert words[-1] == "." and words.count("[VERB]") == 1
        verb = words.index("[VERB]")
        assert verb == data.verb[i]
        nouns = [(k, _number(w)) for k, w in enumerate(words) if _number(w) is not None]
        subject_position, subject_number = nouns[0]
        assert words[subject_position - 1] in ("the", "old", "small", "red", "happy")
        # the rule: the verb's number is the first noun's
        assert data.labels[i] == subject_number
        assert data.subject[i] == subject_position
        between = [n for k, n in nouns[1:] if k < verb]
        attractors = sum(n != subject_number for n in between)
        assert 1 <= len(between) <= 3 and attractors >= 1  # at least one noun of the other number in between
        assert data.attractors[i] == attractors
        seen_attractors.add(attractors)
    assert seen_attractors == {1, 2, 3}
    # both numbers, and the noun nearest the verb is sometimes of the subject's number
    assert 0.4 < data.labels.mean() < 0.6
    assert agreement.shortcut_accuracies(data)["nearest noun"] > 0.2


def test_shortcuts_do_not_solve_the_task():
    acc = agreement.shortcut_accuracies(agreement.agreement_batch(np.random.default_rng(1), 3000))
    assert acc["first noun"] == 1.0
    assert acc["nearest noun"] < 0.6 and acc["majority"] < 0.65 and acc["last noun"] < 0.6


def test_generator_is_reproducible_and_respects_lengths():
    a = agreement.agreement_batch(np.random.default_rng(3), 20, max_length=10)
    b = agreement.agreement_batch(np.random.default_rng(3), 20, max_length=10)
    assert np.array_equal(a.tokens, b.tokens) and a.lengths.max() <= 10
    one = a.take(2)
    assert one.tokens.shape == (1, a.lengths[2]) and one.text(0) == a.text(2)
    with pytest.raises(ValueError):
        agreement.agreement_sentence(np.random.default_rng(0), max_length=6)


def test_padding_does_not_change_a_sentence_s_logits():
    sr.manual_seed(0)
    model = agreement.AgreementTransformer(d_model=8, nhead=2, layers=2, dim_feedforward=8)
    data = agreement.agreement_batch(np.random.default_rng(0), 6)
    with sr.no_grad():
        batched = model(data.tokens, data.verb, data.padding).numpy()
        alone = [model(data.take(i).tokens, data.take(i).verb).numpy()[0] for i in range(len(data))]
    np.testing.assert_allclose(batched, np.array(alone), rtol=1e-10, atol=1e-12)


# -- the study -----------------------------------------------------------------------------------
def test_the_plan_names_real_components_and_one_pass_equals_walking():
    from semirad.analysis import path_shares

    sr.manual_seed(1)
    model = agreement.AgreementTransformer(d_model=8, nhead=2, layers=2, dim_feedforward=8)
    one = agreement.agreement_batch(np.random.default_rng(5), 1).take(0)
    h = model.embeddings(one.tokens)
    loss = agreement.agreement_loss(model, one, embedded=h)
    plan = branch_plan(2)
    tr = sr.trace(loss, [h])
    shares = path_shares(tr, [h], selectors(plan))  # strict: every selector matches something
    walked, paths = walk_counts(tr, h, plan)
    assert paths == h.numel()
    assert {k: shares.counts[k] for k in plan} == walked
    for layer in range(2):  # in every layer a path takes exactly one branch
        assert sum(walked[f"{layer}/{b}"] for b in BRANCHES) == paths


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("transformer-demo")
    result = subprocess.run([sys.executable, "-m", "semirad", "demo", *TINY, "--out", str(out)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out, result.stdout, json.loads((out / "results.json").read_text())


def test_tiny_run_writes_the_report_with_the_expected_structure(tiny_run):
    out, stdout, results = tiny_run
    assert "trace" in stdout and "KBest(2)" in stdout and "backprop" in stdout
    assert results["config"]["d_model"] == 8 and results["config"]["eval"] == 3
    assert 0.0 <= results["accuracy"] <= 1.0
    assert set(results["shares"]) == {"trace", "kbest", "backprop"}
    for method, summary in results["shares"].items():
        assert summary["samples"] == 3
        for layer in range(2):
            means = [summary["mean"][f"{layer}/{b}"] for b in BRANCHES]
            assert all(0.0 <= m <= 1.0 for m in means)
            assert sum(means) == pytest.approx(1.0)
            for b in BRANCHES:
                cell = results["shares_by_layer"][method][f"layer {layer}"][b]
                assert cell["mean"] == pytest.approx(summary["mean"][f"{layer}/{b}"])
                assert cell["std"] >= 0.0
        assert set(results["subject_shares"][method]["mean"]) >= {f"{layer}/{b}" for layer in (0, 1) for b in BRANCHES}
    check = results["check"]
    assert check["layer_sums_max_deviation"] < 1e-9 and check["none_max"] == 0.0
    assert check["walked_equal"] is True and {w["method"] for w in check["walked"]} == {"trace", "kbest"}
    report = (out / "report.md").read_text()
    assert report.startswith("# semirad demo: which branches")
    for heading in ("## Which branch do the paths from the embeddings take?", "### From the subject's embedding only",
                    "## A best path", "## Training", "## Checks"):  # fmt: skip
        assert heading in report
    assert "| layer | branch | trace | KBest(2) | backprop |" in report
    assert results["seconds"]["total"] > 0


def test_tiny_run_draws_the_figures(tiny_run):
    pytest.importorskip("matplotlib")
    out, _, results = tiny_run
    assert results["files"]["figures"] == ["shares.png", "subject_shares.png", "path.png"]
    report = (out / "report.md").read_text()
    for name in results["files"]["figures"]:
        assert (out / name).stat().st_size > 0
        assert f"]({name})" in report


# -- the command line ----------------------------------------------------------------------------
def test_the_transformer_is_the_default_and_lstm_flags_select_the_lstm():
    parser = cli.build_parser()
    assert isinstance(cli.config_from_args(parser.parse_args([])), TransformerConfig)
    config = cli.config_from_args(parser.parse_args(["--d-model", "16", "--eval", "5", "--steps", "7"]))
    assert (config.d_model, config.eval, config.steps, config.batch) == (16, 5, 7, TransformerConfig().batch)
    assert isinstance(cli.config_from_args(parser.parse_args(["--model", "lstm"])), DemoConfig)
    lstm = cli.config_from_args(parser.parse_args(["--hidden", "4", "--steps", "2"]))
    assert isinstance(lstm, DemoConfig) and (lstm.hidden, lstm.steps) == (4, 2)
    with pytest.raises(ValueError, match="--hidden"):
        cli.config_from_args(parser.parse_args(["--model", "transformer", "--hidden", "4"]))
    with pytest.raises(ValueError, match="--d-model"):
        cli.config_from_args(parser.parse_args(["--model", "lstm", "--d-model", "4"]))


def test_a_bad_configuration_exits_2_before_training(tmp_path):
    for argv in (["--heads", "3"], ["--eval", "0"], ["--max-length", "6"], ["--d-model", "8", "--hidden", "3"]):
        with pytest.raises(SystemExit) as stop:
            cli.main([*argv, "--no-progress", "--out", str(tmp_path / "bad")])
        assert stop.value.code == 2
    assert not (tmp_path / "bad" / "results.json").exists()


@pytest.mark.slow
def test_a_small_model_learns_agreement():
    """A smaller model than the demo's, trained for 150 steps (a few seconds): >= 95 % on fresh sentences."""
    sr.manual_seed(0)
    model = agreement.AgreementTransformer(d_model=16, nhead=2, layers=2, dim_feedforward=32)
    opt = sr.optim.Adam(model.parameters(), lr=5e-3)
    rng = np.random.default_rng(0)
    for _ in range(150):
        batch = agreement.agreement_batch(rng, 64)
        opt.zero_grad()
        agreement.agreement_loss(model, batch).backward()
        opt.step()
    test = agreement.agreement_batch(np.random.default_rng(99), 500)
    assert agreement.agreement_accuracy(model, test) >= 0.95


def test_the_example_runs_on_a_tiny_configuration(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "transformer_agreement.py"
    spec = importlib.util.spec_from_file_location("transformer_agreement", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = example.main(steps=2, batch=4, d_model=8, n_held=2, n_test=8, verbose=False,
                       out=str(tmp_path) if _have_matplotlib() else None)  # fmt: skip
    assert set(out["mean"]) == {"trace", "KBest(4)", "backprop"}
    for shares in out["mean"].values():
        for layer in range(2):
            assert sum(shares[f"{layer}/{b}"] for b in BRANCHES) == pytest.approx(1.0)
    if _have_matplotlib():
        assert (tmp_path / "shares.png").exists() and (tmp_path / "path.png").exists()


def _have_matplotlib() -> bool:
    from semirad.analysis.plots import have_matplotlib

    return have_matplotlib()
