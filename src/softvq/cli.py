"""The ``softvq`` command: train, evaluate, embed, compare, report."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import typing
from pathlib import Path
from typing import Sequence

from . import _io
from .config import TrainConfig, parse_value
from .errors import ConfigError, SoftVQError, TrainingInterrupted


def _add_config_flags(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """One ``--kebab-case`` flag per TrainConfig field; unset flags keep the file/default."""
    hints = typing.get_type_hints(TrainConfig)
    group = parser.add_argument_group("run options (override --config)")
    for f in dataclasses.fields(TrainConfig):
        if f.name in exclude:
            continue
        default = f.default
        help_text = f.metadata.get("help", "")
        listed = ", ".join(f.metadata.get("choices") or ())
        if listed and listed not in help_text:  # some help texts already name their choices
            help_text += f"; one of {listed}"
        if default is not None:
            help_text += f" (default: {default})"
        help_text = help_text.replace("%", "%%")  # argparse formats help with %
        flag = f"--{f.name.replace('_', '-')}"
        if hints[f.name] is bool:  # `--plots`, `--plots false` and `--no-plots` all work
            group.add_argument(flag, dest=f.name, default=argparse.SUPPRESS, metavar="BOOL", nargs="?",
                               const=True, type=_flag_parser(f.name, bool), help=help_text)
            group.add_argument(f"--no-{flag[2:]}", dest=f.name, default=argparse.SUPPRESS,
                               action="store_const", const=False, help=argparse.SUPPRESS)
            continue
        group.add_argument(
            flag, dest=f.name, default=argparse.SUPPRESS, metavar=f.name.upper(),
            type=_flag_parser(f.name, hints[f.name]), help=help_text,
        )


def _flag_parser(name: str, tp: object):
    """argparse ``type=`` callable with our message (argparse hides ValueError text)."""
    def parse(text: str) -> object:
        try:
            return parse_value(name, text, tp)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None
    parse.__name__ = tp.__name__ if isinstance(tp, type) else name
    return parse


def _config_from_args(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    if getattr(args, "config", None):
        base = TrainConfig.load(args.config)
    base = base or TrainConfig()
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    cfg = dataclasses.replace(base, **overrides)
    cfg.validate()
    return cfg


def _cmd_train(args: argparse.Namespace) -> int:
    from .distributed import setup
    from .evaluation.evaluate import evaluate_run
    from .evaluation.metrics import check_kmeans_options
    from .training import train

    if args.evaluate:  # before training, not after it
        check_kmeans_options(args.n_init, 0)
    if args.resume:
        changed = [f"--{f.name.replace('_', '-')}" for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)]
        if changed or args.config or args.out or args.overwrite:
            raise SoftVQError(f"--resume continues {args.resume} exactly as its config.json says; "
                              f"{', '.join(changed) or '--config/--out/--overwrite'} cannot be combined with it")
        out = train(TrainConfig(), args.resume, resume=True, progress=not args.quiet)
    else:
        if args.out is None:
            raise SoftVQError("--out RUN_DIR is required (or --resume RUN_DIR)")
        out = train(_config_from_args(args), args.out, overwrite=args.overwrite, progress=not args.quiet)
    if not setup().is_main:  # under torchrun, rank 0 reports and evaluates
        return 0
    print(f"run written to {out}")
    if args.evaluate:
        _print_metrics(evaluate_run(out, n_init=args.n_init))
    return 0


def _print_metrics(metrics: dict) -> None:
    width = max(len(k) for k in metrics)
    for k, v in metrics.items():
        print(f"  {k:<{width}}  {v:.4f}" if isinstance(v, float) else f"  {k:<{width}}  {v}")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation.evaluate import evaluate_run

    metrics = evaluate_run(args.run_dir, n_init=args.n_init, seed=args.seed)
    _print_metrics(metrics)
    print(f"metrics written to {Path(args.run_dir) / 'metrics.json'}")
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from .evaluation.evaluate import embed_run

    print(f"latents written to {embed_run(args.run_dir, args.out, split=args.split)}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare, parse_bottlenecks
    from .reporting import tables

    from .presets import PRESETS, Preset

    if args.preset is not None and args.preset not in PRESETS:
        raise SoftVQError(f"unknown preset {args.preset!r}; choose from {', '.join(PRESETS)}")
    preset = PRESETS[args.preset] if args.preset else Preset("")
    names = parse_bottlenecks(args.bottlenecks if args.bottlenecks is not None else preset.bottlenecks)
    n_seeds = args.seeds if args.seeds is not None else preset.seeds
    n_init = args.n_init if args.n_init is not None else preset.n_init
    if n_seeds < 1:
        raise SoftVQError(f"--seeds must be at least 1, got {n_seeds}")
    jobs = args.jobs if args.jobs is not None else preset.jobs
    if jobs < 1:
        raise SoftVQError(f"--jobs must be at least 1, got {jobs}")
    seeds = list(range(args.first_seed, args.first_seed + n_seeds))
    cfg = _config_from_args(args, TrainConfig.from_dict(preset.config))
    out = Path(args.out)
    anchors = args.anchors if args.anchors is not None else preset.anchors
    result = compare(cfg, names, seeds, out, n_init=n_init, anchors=anchors,
                     progress=not args.quiet, jobs=jobs, overwrite=args.overwrite)
    _io.write_text(out / "command.txt", "softvq " + " ".join(shlex.quote(a) for a in sys.argv[1:]) + "\n")
    print()
    print(tables.format_terminal(result["summary"], result["metrics"]))
    print(f"\ntables written to {Path(args.out) / 'results.md'} (.csv, .json)")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .reporting.html import build_report

    print(f"report written to {build_report(args.dir, args.out)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="softvq", allow_abbrev=False,
                                     description="Soft VQ-VAE and baseline bottlenecks: train, evaluate, compare.")
    parser.add_argument("--version", action="version", version="softvq 0.1.0")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", allow_abbrev=False, help="train one model into a run directory")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory to write")
    p.add_argument("--config", metavar="FILE", help="JSON or TOML config file (flags override it)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--evaluate", action="store_true", help="evaluate after training")
    p.add_argument("--n-init", type=int, default=10, help="k-means restarts for --evaluate (default: 10)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_config_flags(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", allow_abbrev=False, help="evaluate a run on its test split; writes metrics.json")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--n-init", type=int, default=10, help="k-means restarts (reference code: 100; default: 10)")
    p.add_argument("--seed", type=int, default=0, help="k-means and probe seed (default: 0)")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("embed", allow_abbrev=False, help="write a split's latents (z) and labels (y) to an .npz file")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--split", default="test", choices=("train", "test"),
                   help="which split to encode (default: test; a --validation run's test split is its validation split)")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="output file: z (N, latent_dim), y, class_names, codes")
    p.set_defaults(func=_cmd_embed)

    p = sub.add_parser("compare", allow_abbrev=False, help="train and evaluate several bottlenecks over seeds; write tables")
    p.add_argument("--preset", help="a named protocol: digits, fashion-mnist, fashion-mnist-quick (flags override it)")
    p.add_argument("--bottlenecks", default=None, help="'all' or a comma-separated list (default: all)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: 3)")
    p.add_argument("--first-seed", type=int, default=0, help="first seed (default: 0)")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--config", metavar="FILE", help="base config for every run (flags override it)")
    p.add_argument("--n-init", type=int, default=None, help="k-means restarts (default: 10)")
    p.add_argument("--anchors", action=argparse.BooleanOptionalAction, default=None,
                   help="add the raw-pixel and PCA rows, which need no training (default: yes, or the preset's)")
    p.add_argument("--overwrite", action="store_true",
                   help="retrain runs in --out that were made with a different config (default: refuse)")
    p.add_argument("-j", "--jobs", type=int, default=None,
                   help="runs trained at once, in worker processes sharing the CPU cores (default: 1, or the preset's)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    _add_config_flags(p, exclude=("bottleneck", "seed"))
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("report", allow_abbrev=False, help="write one self-contained HTML report of a run or comparison directory")
    p.add_argument("dir", metavar="DIR", help="run directory (softvq train) or comparison directory (softvq compare)")
    p.add_argument("--out", metavar="FILE.html", help="output file (default: DIR/report.html)")
    p.set_defaults(func=_cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors print ``error: ...`` and exit 2, never a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except TrainingInterrupted as exc:
        print(f"softvq {args.command}: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except SoftVQError as exc:
        print(f"softvq {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"softvq {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, permissions, a vanished file: the environment, not a bug
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"softvq {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
