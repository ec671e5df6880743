"""The transformer study's run: train on subject-verb agreement, then ask where the best paths run.

:func:`train_agreement` trains :class:`~.agreement.AgreementTransformer`; :func:`study` traces
held-out sentences one by one from their embeddings (the encoder's input, an intermediate tensor)
and counts, per layer, the share of paths through the queries, the keys, the values and around the
attention on the residual stream — for the best path of every element (``sr.trace``), for its
``k`` best (``KBest(k)``) and for all paths weighted by ``|product|`` (backprop) —
with :func:`~semirad.analysis.path_shares` and :func:`~semirad.analysis.backprop_path_shares`;
:func:`run_transformer_demo` adds the report (:mod:`.transformer_report`).
"""

from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass, field
from pathlib import Path as FilePath

import numpy as np

from ... import backend
from ...api import backward as _backward
from ...api import trace as _trace
from ...optim import Adam
from ...paths import Path
from ...rng import manual_seed
from ...semirings.k_best import KBest
from ..progress import progress_bar
from .agreement import AgreementData, AgreementTransformer, agreement_accuracy, agreement_batch, agreement_loss
from .config import TransformerConfig

#: the branches of a layer a path can take: into the attention through one of its inputs, or around it
BRANCHES = ("query", "key", "value", "residual")
#: the study's columns, in the report's order
METHODS = ("trace", "kbest", "backprop")
#: the components of the layers (``model.encoder.layers[l]``)
LAYER_PREFIX = "encoder/layers"


def branch_plan(layers: int, prefix: str = LAYER_PREFIX) -> dict:
    """What each label of the study means, independent of any API: ``{"<layer>/<branch>": rule}``
    with ``("vertex", pattern)`` (the path has a vertex in a component matching ``pattern``) or
    ``("edge", pattern, op, input)`` (it takes input slot ``input`` of an ``op`` recorded in a
    component matching ``pattern``: the residual stream is input 0 of the layer's
    ``residual_attn`` add).

    >>> branch_plan(1)["0/residual"]
    ('edge', 'encoder/layers/0/residual_attn', 'add', 0)
    """
    plan = {}
    for layer in range(layers):
        base = f"{prefix}/{layer}"
        for branch in BRANCHES[:3]:
            plan[f"{layer}/{branch}"] = ("vertex", f"{base}/self_attn/{branch}")
        plan[f"{layer}/residual"] = ("edge", f"{base}/residual_attn", "add", 0)
    return plan


def selectors(plan: dict) -> dict:
    """The ``through=`` argument of :func:`~semirad.analysis.path_shares` for a :func:`branch_plan`."""
    from .. import edge

    out = {}
    for name, rule in plan.items():
        if rule[0] == "vertex":
            out[name] = rule[1]
        else:
            out[name] = edge(component=rule[1], op=rule[2], input=rule[3])
    return out


def walk_counts(result, source, plan: dict, ranks: int = 1) -> tuple[dict, int]:
    """The number of paths (of every element of ``source``, ranks ``0..ranks-1``) that meet each rule
    of ``plan``, by walking every path one hop at a time: the slow reference the one-pass counts are
    checked against. Returns ``(counts, paths)``."""
    node = result.node_of(source)
    counts = dict.fromkeys(plan, 0)
    paths = 0
    rules: dict = {}  # node -> the rules whose pattern its component matches

    def matching(here):
        found = rules.get(here)
        if found is None:
            name = here.component or ""
            found = rules[here] = [(k, rule) for k, rule in plan.items() if fnmatch.fnmatchcase(name, rule[1])]
        return found

    for flat in range(int(np.prod(node.shape, dtype=np.int64))):
        index = tuple(int(i) for i in np.unravel_index(flat, node.shape)) if node.shape else ()
        for rank in range(ranks):
            vertices = list(result.walk(node, index, rank))
            if not vertices:
                continue
            paths += 1
            hit = set()
            for (before, _, _), (here, _, _) in zip(vertices, vertices[1:]):
                for label_, rule in matching(here):
                    if rule[0] == "vertex":
                        hit.add(label_)
                    elif here.op_name == rule[2] and len(here.parents) > rule[3] and here.parents[rule[3]] is before:
                        hit.add(label_)
            for label_ in hit:
                counts[label_] += 1
    return counts, paths


@dataclass
class TransformerFindings:
    """What the study found: the numbers and objects the report is made of.

    ``per_sentence[method]`` is a list (one entry per held-out sentence) of ``{label: share}``;
    ``subject[method]`` the same for the paths from the subject noun's embedding only. ``history``
    has ``step``, ``loss`` and ``accuracy`` (on 200 fresh sentences) every ``log_every`` steps.
    ``paths`` are the pictured paths (``{title: Path}``), ``path_sentence`` the sentence they run in.
    """

    config: TransformerConfig
    started: float
    parameters: int
    losses: list
    history: dict
    seconds: dict
    accuracy: float
    accuracy_by_attractors: dict
    shortcuts: dict
    examples: list
    plan: dict
    per_sentence: dict
    subject: dict
    paths: dict
    path_sentence: str
    path_text: str
    check: dict = field(default_factory=dict)


def train_and_study(config: TransformerConfig, say=print) -> TransformerFindings:
    """Train the model of ``config``, then :func:`study` it on fresh held-out sentences."""
    from .run import _check_device, _to_device

    _check_device(config.device)
    if config.steps < 0 or config.eval < 1 or config.k < 1 or config.layers < 1 or config.d_model % config.heads:
        raise ValueError("--steps must be >= 0, --eval, --k and --layers >= 1, and --heads must divide --d-model")
    started = time.perf_counter()
    manual_seed(config.seed)
    model = AgreementTransformer(config.d_model, config.heads, config.layers, config.dim_feedforward,
                                 config.max_length)  # fmt: skip
    _to_device(model, config.device)
    n_params = int(sum(p.numel() for p in model.parameters()))
    say(
        f"semirad demo --model transformer: subject-verb agreement across attractors, sentences of up to "
        f"{config.max_length} tokens; {config.layers}-layer transformer encoder, d_model {config.d_model}, "
        f"{config.heads} heads, {n_params} parameters"
    )
    test = agreement_batch(np.random.default_rng(config.seed + 2), config.test, config.max_length)
    losses, history, seconds = train_agreement(config, model, test)
    t0 = time.perf_counter()
    accuracy = agreement_accuracy(model, test)
    by_attractors = {}
    for n in sorted(set(test.attractors.tolist())):
        chosen = np.flatnonzero(test.attractors == n)
        by_attractors[int(n)] = agreement_accuracy(model, test.rows(chosen))
    seconds["accuracy"] = time.perf_counter() - t0
    from .agreement import shortcut_accuracies

    held = agreement_batch(np.random.default_rng(config.seed + 3), config.eval, config.max_length)
    per_sentence, subject, paths, path_text, check, study_seconds = study(config, model, held)
    seconds.update(study_seconds)
    return TransformerFindings(
        config=config,
        started=started,
        parameters=n_params,
        losses=losses,
        history=history,
        seconds=seconds,
        accuracy=accuracy,
        accuracy_by_attractors=by_attractors,
        shortcuts=shortcut_accuracies(test),
        examples=[(test.text(i), int(test.labels[i]), int(test.attractors[i])) for i in range(min(4, len(test)))],
        plan=branch_plan(config.layers),
        per_sentence=per_sentence,
        subject=subject,
        paths=paths,
        path_sentence=held.text(0),
        path_text=path_text,
        check=check,
    )


def train_agreement(config: TransformerConfig, model: AgreementTransformer, test: AgreementData) -> tuple:
    """Adam on fresh batches; every ``log_every`` steps the mean loss and the accuracy on the first 200
    test sentences. Returns ``(losses, history, seconds)``."""
    rng = np.random.default_rng(config.seed)
    opt = Adam(model.parameters(), lr=config.lr)
    probe = test.rows(np.arange(min(200, len(test))))
    history: dict = {"step": [], "loss": [], "accuracy": []}
    losses: list = []
    logging = 0.0
    start = time.perf_counter()
    with progress_bar(config.steps, "training", enable=config.progress) as bar:
        for step in range(1, config.steps + 1):
            batch = agreement_batch(rng, config.batch, config.max_length)
            opt.zero_grad()
            loss = agreement_loss(model, batch)
            loss.backward()
            opt.step()
            losses.append(float(loss.item()))
            bar.update()
            if step % config.log_every == 0 or step == config.steps:
                t0 = time.perf_counter()
                history["step"].append(step)
                history["loss"].append(float(np.mean(losses[-config.log_every :])))
                history["accuracy"].append(agreement_accuracy(model, probe))
                logging += time.perf_counter() - t0
                bar.set_postfix(loss=history["loss"][-1], accuracy=history["accuracy"][-1])
    return losses, history, {"train": time.perf_counter() - start - logging, "train_logging": logging}


def study(config: TransformerConfig, model: AgreementTransformer, held: AgreementData) -> tuple:
    """Trace every held-out sentence from its embeddings; the path shares of each method per sentence.

    Returns ``(per_sentence, subject, paths, path_text, check, seconds)``: the shares of all paths
    from the sentence's embeddings and of the paths from its subject's embedding only (each
    ``{method: [{label: share}, ...]}``), the pictured paths and the text of the first, the checks,
    and the time each method took in all.
    """
    from .. import backprop_path_shares, path_shares

    plan = branch_plan(config.layers)
    through = selectors(plan)
    per_sentence = {m: [] for m in METHODS}
    subject = {m: [] for m in METHODS}
    seconds = dict.fromkeys(METHODS + ("forward",), 0.0)
    check: dict = {"layer_sums": [], "none": [], "walked": []}
    paths: dict = {}
    path_text = ""
    semiring = KBest(config.k)
    with progress_bar(len(held), "held-out sentences", enable=config.progress) as bar:
        for i in range(len(held)):
            one = held.take(i)
            t0 = time.perf_counter()
            h = model.embeddings(one.tokens)
            loss = agreement_loss(model, one, embedded=h)
            seconds["forward"] += time.perf_counter() - t0
            mask = np.zeros(h.shape, dtype=bool)
            mask[0, int(one.subject[0]), :] = True

            t0 = time.perf_counter()
            tr = _trace(loss, [h])
            everything = path_shares(tr, [h], through)
            of_subject = path_shares(tr, [h], through, elements=mask)
            seconds["trace"] += time.perf_counter() - t0
            _keep(per_sentence, subject, "trace", everything, of_subject, check)

            t0 = time.perf_counter()
            kb = _backward(loss, [h], semiring=semiring)
            k_everything = path_shares(kb, [h], through)
            k_subject = path_shares(kb, [h], through, elements=mask)
            seconds["kbest"] += time.perf_counter() - t0
            _keep(per_sentence, subject, "kbest", k_everything, k_subject, check)

            t0 = time.perf_counter()
            bp = backprop_path_shares(loss, [h], through)
            bp_subject = backprop_path_shares(loss, [h], through, elements=mask)
            seconds["backprop"] += time.perf_counter() - t0
            _keep(per_sentence, subject, "backprop", bp, bp_subject, check)

            if i == 0:
                paths, path_text = _pictured_paths(tr, kb, h, int(one.subject[0]), config.k)
            if config.verify and i < config.verify_sentences:
                for name, result, ranks, counted in (
                    ("trace", tr, 1, everything),
                    ("kbest", kb, config.k, k_everything),
                ):
                    walked, n_paths = walk_counts(result, h, plan, ranks)
                    check["walked"].append({
                        "method": name,
                        "sentence": i,
                        "paths_walked": n_paths,
                        "equal": all(float(walked[k]) == float(counted.counts.get(k, 0)) for k in plan),
                    })  # fmt: skip
            del tr, kb
            bar.update()
    return per_sentence, subject, paths, path_text, check, {f"study_{m}": s for m, s in seconds.items()}


def _keep(per_sentence: dict, subject: dict, method: str, everything, of_subject, check: dict) -> None:
    """Store the shares of one sentence (labels of the plan only), and the per-layer sums for the checks."""
    per_sentence[method].append({k: float(v) for k, v in everything.shares.items()})
    subject[method].append({k: float(v) for k, v in of_subject.shares.items()})
    layers = sorted({k.split("/")[0] for k in everything.shares if "/" in k})
    check["layer_sums"].append(
        {
            "method": method,
            **{layer: float(sum(everything.shares.get(f"{layer}/{b}", 0.0) for b in BRANCHES)) for layer in layers},
        }
    )
    check["none"].append(float(everything.shares.get("none", 0.0)))


def _pictured_paths(tr, kb, h, position: int, k: int) -> tuple[dict, str]:
    """The best path from the strongest embedding element of the subject (``sr.trace``), and the
    next best paths of that element (``KBest``), for the path picture."""
    values = np.abs(backend.to_numpy(tr[h])[0, position])
    index = (0, position, int(values.argmax()))
    best: Path = tr.path(h, index)
    paths = {f"trace: best path from h{list(index)}": best}
    for rank in range(1, min(k, 3)):
        try:
            paths[f"KBest({k}): path {rank + 1}"] = kb.path(h, index, rank=rank)
        except (IndexError, KeyError, ValueError):  # fewer paths than ranks
            break
    return paths, str(best)


def summarize(per_sentence: dict) -> dict:
    """``{method: {"mean": {label: share}, "std": {label: share}}}`` over the sentences (population std).

    >>> summarize({"trace": [{"a": 0.5}, {"a": 1.0}]})["trace"]
    {'mean': {'a': 0.75}, 'std': {'a': 0.25}, 'samples': 2}
    """
    out = {}
    for method, rows in per_sentence.items():
        labels: list = []
        for row in rows:
            for key in row:
                if key not in labels:
                    labels.append(key)
        values = {key: np.array([row.get(key, 0.0) for row in rows], dtype=np.float64) for key in labels}
        out[method] = {
            "mean": {key: float(v.mean()) if v.size else float("nan") for key, v in values.items()},
            "std": {key: float(v.std()) if v.size else float("nan") for key, v in values.items()},
            "samples": len(rows),
        }
    return out


def by_layer(shares: dict, layers: int) -> dict:
    """``{label: share}`` with labels ``"<layer>/<branch>"`` -> ``{"layer <l>": {branch: share}}``.

    >>> by_layer({"0/key": 0.25, "0/residual": 0.75, "none": 0.0}, 1)
    {'layer 0': {'query': 0.0, 'key': 0.25, 'value': 0.0, 'residual': 0.75}}
    """
    return {f"layer {layer}": {b: float(shares.get(f"{layer}/{b}", 0.0)) for b in BRANCHES} for layer in range(layers)}


def out_path(out_dir) -> FilePath:
    """``out_dir`` as a created directory."""
    out = FilePath(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out
