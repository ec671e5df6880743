"""The ``semirad demo`` command line: its flags, the :class:`DemoConfig` they give, and the entry point."""

from __future__ import annotations

import argparse
from dataclasses import fields

from .config import DESCRIPTION, TRANSFORMER_DESCRIPTION, DemoConfig, TransformerConfig

EPILOG = (
    "--model transformer (the default) writes report.md, results.json and figures (with matplotlib) into --out; "
    "--model lstm also graph.dot (graph.svg with Graphviz). The flags of the other model are refused; an LSTM "
    "flag without --model selects the LSTM (as before the transformer study existed)."
)
MODELS = ("transformer", "lstm")
#: flags of one model only: ``{model: {attribute: flag}}``
ONLY = {
    "lstm": {"hidden": "--hidden", "embed": "--embed", "length": "--length", "trace_every": "--trace-every",
             "probe": "--probe", "eval_batches": "--eval-batches", "eval_size": "--eval-size"},
    "transformer": {"d_model": "--d-model", "heads": "--heads", "layers": "--layers",
                    "dim_feedforward": "--ff", "max_length": "--max-length", "eval": "--eval", "k": "--k"},
}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``semirad demo`` flags. A flag left out is ``None`` and takes the chosen model's default.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["--steps", "3", "--no-verify"])
    >>> args.steps, args.hidden, args.no_verify, args.out, args.model
    (3, None, True, 'semirad-demo', None)
    """
    d, t = DemoConfig(), TransformerConfig()
    parser.add_argument("--model", choices=MODELS, default=None,
                        help="transformer (default): subject-verb agreement, path shares per layer; lstm: the "
                             "Dyck-2 LSTM language model, component importance during training")  # fmt: skip
    parser.add_argument("--out", default="semirad-demo", help="directory for the report (default: %(default)s)")
    both = parser.add_argument_group("both models")
    both.add_argument("--steps", type=int, help=f"training steps (default: {t.steps} transformer, {d.steps} lstm)")
    both.add_argument("--batch", type=int, help=f"sequences per training batch (default: {t.batch} / {d.batch})")
    both.add_argument("--lr", type=float, help=f"Adam learning rate (default: {t.lr} / {d.lr})")
    both.add_argument("--seed", type=int, help="seed of data and init (default: 0)")
    both.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                      help="cpu (numpy) or cuda (cupy; needs a CUDA GPU)")  # fmt: skip
    both.add_argument("--no-verify", action="store_true", help="skip walking every path to check the counts")
    both.add_argument("--no-progress", action="store_true", help="no progress bars")
    tr = parser.add_argument_group("--model transformer")
    tr.add_argument("--d-model", type=int, help=f"model width (default: {t.d_model})")
    tr.add_argument("--heads", type=int, help=f"attention heads (default: {t.heads})")
    tr.add_argument("--layers", type=int, help=f"encoder layers (default: {t.layers})")
    tr.add_argument("--ff", type=int, help=f"feed-forward width (default: {t.dim_feedforward})")
    tr.add_argument("--max-length", type=int, help=f"tokens per sentence at most, >= 8 (default: {t.max_length})")
    tr.add_argument("--eval", type=int, help=f"held-out sentences traced for the shares (default: {t.eval})")
    tr.add_argument("--k", type=int, help=f"paths per element of the KBest column (default: {t.k})")
    lstm = parser.add_argument_group("--model lstm")
    lstm.add_argument("--hidden", type=int, help=f"LSTM hidden size (default: {d.hidden})")
    lstm.add_argument("--embed", type=int, help=f"embedding size (default: {d.embed})")
    lstm.add_argument("--length", type=int, help=f"brackets per string, even (default: {d.length})")
    lstm.add_argument("--trace-every", type=int, help=f"trace the probe batch every N steps (default: {d.trace_every})")
    lstm.add_argument("--probe", type=int, help=f"strings in the probe batch (default: {d.probe})")
    lstm.add_argument("--eval-batches", type=int, help=f"held-out batches for over_dataset (default: {d.eval_batches})")
    lstm.add_argument("--eval-size", type=int, help=f"strings per held-out batch (default: {d.eval_size})")


def model_of(args: argparse.Namespace) -> str:
    """The model a command line asks for: ``--model``, else ``lstm`` if an LSTM flag is given, else
    ``transformer``; a ``ValueError`` for a flag of the other model.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> model_of(parser.parse_args([])), model_of(parser.parse_args(["--hidden", "4"]))
    ('transformer', 'lstm')
    """
    given = {m: [flag for attr, flag in ONLY[m].items() if getattr(args, attr, None) is not None] for m in MODELS}
    model = args.model or ("lstm" if given["lstm"] and not given["transformer"] else "transformer")
    other = "lstm" if model == "transformer" else "transformer"
    if given[other]:
        raise ValueError(f"{', '.join(given[other])} belong{'s' if len(given[other]) == 1 else ''} to --model {other}, "
                         f"not --model {model}")  # fmt: skip
    return model


def config_from_args(args: argparse.Namespace) -> DemoConfig | TransformerConfig:
    """The :class:`TransformerConfig` or :class:`DemoConfig` (``--model lstm``) of parsed flags; a
    ``ValueError`` for sizes that make no run.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> config_from_args(parser.parse_args(["--hidden", "4", "--no-progress"])).hidden
    4
    >>> config_from_args(parser.parse_args(["--d-model", "16"])).d_model
    16
    """
    model = model_of(args)
    cls = TransformerConfig if model == "transformer" else DemoConfig
    values = {"device": args.device, "verify": not args.no_verify, "progress": not args.no_progress}
    names = {f.name for f in fields(cls)}
    for attr in ("steps", "batch", "lr", "seed", *ONLY[model]):
        value = getattr(args, attr, None)
        if value is not None and attr in names:
            values[attr] = value
    config = cls(**values)
    if model == "lstm":
        if config.steps < 0 or config.trace_every < 1 or config.hidden < 1 or config.embed < 1 or config.probe < 1:
            raise ValueError("--steps must be >= 0; --trace-every, --hidden, --embed and --probe >= 1")
    elif (config.steps < 0 or config.batch < 1 or min(config.d_model, config.heads, config.layers,
                                                       config.dim_feedforward, config.eval, config.k) < 1
          or config.d_model % config.heads or config.max_length < 8):  # fmt: skip
        raise ValueError("--steps must be >= 0; --batch, --d-model, --heads, --layers, --ff, --eval and --k >= 1; "
                         "--heads must divide --d-model; --max-length >= 8")  # fmt: skip
    return config


def build_parser() -> argparse.ArgumentParser:
    """The ``semirad demo`` argument parser: the flags of :func:`add_arguments`, described.

    >>> build_parser().prog
    'semirad demo'
    """
    parser = argparse.ArgumentParser(prog="semirad demo", description=f"{TRANSFORMER_DESCRIPTION} With --model lstm: "
                                     f"{DESCRIPTION.strip('`').split(': ', 1)[-1]}", epilog=EPILOG)  # fmt: skip
    add_arguments(parser)
    return parser


def main(argv: list | None = None) -> None:
    """``semirad demo [flags]``: parse ``argv`` (default: the command line), run, report; exit code 2 on
    a bad configuration or device.

    >>> main(["--steps", "-1"])
    Traceback (most recent call last):
    ...
    SystemExit: 2
    """
    from .run import run_demo
    from .transformer_report import run_transformer_demo

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        if isinstance(config, TransformerConfig):
            run_transformer_demo(config, args.out)
        else:
            run_demo(config, args.out)
    except (RuntimeError, ValueError) as error:
        parser.exit(2, f"semirad demo: error: {error}\n")
