"""The ``semirad demo`` command line: its flags, the :class:`DemoConfig` they give, and the entry point."""

from __future__ import annotations

import argparse

from .config import DESCRIPTION, DemoConfig

EPILOG = "Writes report.md, results.json, figures (with matplotlib) and graph.dot (graph.svg with Graphviz) into --out."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``semirad demo`` flags.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["--steps", "3", "--no-verify"])
    >>> args.steps, args.hidden, args.no_verify, args.out
    (3, 48, True, 'semirad-demo')
    """
    d = DemoConfig()
    parser.add_argument("--out", default="semirad-demo", help="directory for the report (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=d.steps, help="training steps (default: %(default)s)")
    parser.add_argument("--hidden", type=int, default=d.hidden, help="LSTM hidden size (default: %(default)s)")
    parser.add_argument("--embed", type=int, default=d.embed, help="embedding size (default: %(default)s)")
    parser.add_argument("--length", type=int, default=d.length, help="brackets per string, even (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=d.batch, help="strings per training batch (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of data and init (default: %(default)s)")
    parser.add_argument(
        "--trace-every",
        type=int,
        default=d.trace_every,
        help="trace the probe batch every N steps (default: %(default)s)",
    )
    parser.add_argument("--probe", type=int, default=d.probe, help="strings in the probe batch (default: %(default)s)")
    parser.add_argument(
        "--eval-batches",
        type=int,
        default=d.eval_batches,
        help="held-out batches for over_dataset (default: %(default)s)",
    )
    parser.add_argument(
        "--eval-size", type=int, default=d.eval_size, help="strings per held-out batch (default: %(default)s)"
    )
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu", help="cpu (numpy) or cuda (cupy; needs a CUDA GPU)"
    )
    parser.add_argument("--no-verify", action="store_true", help="skip walking every path to check the counts")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace) -> DemoConfig:
    """The :class:`DemoConfig` of parsed flags; a ``ValueError`` for sizes that make no run.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> config_from_args(parser.parse_args(["--hidden", "4", "--no-progress"])).hidden
    4
    """
    if args.steps < 0 or args.trace_every < 1 or args.hidden < 1 or args.embed < 1 or args.probe < 1:
        raise ValueError("--steps must be >= 0; --trace-every, --hidden, --embed and --probe >= 1")
    return DemoConfig(
        steps=args.steps,
        batch=args.batch,
        length=args.length,
        embed=args.embed,
        hidden=args.hidden,
        lr=args.lr,
        seed=args.seed,
        trace_every=args.trace_every,
        probe=args.probe,
        eval_batches=args.eval_batches,
        eval_size=args.eval_size,
        device=args.device,
        verify=not args.no_verify,
        progress=not args.no_progress,
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``semirad demo`` argument parser: the flags of :func:`add_arguments`, described.

    >>> build_parser().prog
    'semirad demo'
    """
    parser = argparse.ArgumentParser(prog="semirad demo", description=DESCRIPTION, epilog=EPILOG)
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

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        run_demo(config_from_args(args), args.out)
    except (RuntimeError, ValueError) as error:
        parser.exit(2, f"semirad demo: error: {error}\n")
