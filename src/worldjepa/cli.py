"""`worldjepa` command line: pretrain, probe, collect, envs.

Every subcommand turns bad input into one line on stderr (`error: ...` saying what to fix) and exit
status 2, instead of a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from worldjepa.errors import UserError


def _preset_args(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--config", "-c", default=default, help=f"preset name or YAML path (default {default})")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="override preset values")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (shortcut for train.device=...)")


def cmd_pretrain(args: argparse.Namespace) -> None:
    from worldjepa.config import apply_overrides, load_preset
    from worldjepa.pretrain import run_pretrain

    overrides = list(args.overrides) + ([f"train.device={args.device}"] if args.device else [])
    cfg = apply_overrides(load_preset(args.config), overrides)
    run_dir = Path(args.run_dir or f"runs/{Path(args.config).stem}")
    metrics = run_pretrain(cfg, run_dir)
    loss = metrics.get("loss", float("nan"))
    print(f"done: {run_dir} (final loss {loss:.4f}); next: worldjepa probe --run {run_dir}")


def cmd_probe(args: argparse.Namespace) -> None:
    from worldjepa.probe import run_probe

    overrides = list(args.overrides) + ([f"train.device={args.device}"] if args.device else [])
    print(run_probe(Path(args.run), overrides).table())


def cmd_collect(args: argparse.Namespace) -> None:
    from worldjepa.data.collect import collect, write_episode_preview

    result = collect(
        args.env,
        args.episodes,
        args.out,
        policy=args.policy,
        workers=args.workers,
        seed=args.seed,
        variation=args.variation,
        image_size=args.image_size,
    )
    preview = write_episode_preview(args.out, Path(args.out) / "preview.gif")
    print(f"{result}\npreview: {preview}")


def cmd_envs(args: argparse.Namespace) -> None:
    from worldjepa.envs.registry import ENVS

    for env_id, entry in ENVS.items():
        print(f"{env_id:28s} {entry.max_episode_steps:4d} steps  ({entry.entry_point})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="worldjepa", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pretrain", help="self-supervised pretraining (I-JEPA, V-JEPA) from a preset")
    _preset_args(p, "ijepa_tiny")
    p.add_argument("--run-dir", help="output folder (default runs/<preset>)")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("probe", help="frozen evaluation: pretrained vs random-init encoder, side by side")
    p.add_argument("--run", required=True, help="a pretraining run folder (holds config.yaml and latest.pt)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="override e.g. probe.kind=linear")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("collect", help="record trajectories from a simulated world")
    p.add_argument("--env", required=True, help="env id (see `worldjepa envs`)")
    p.add_argument("--episodes", type=int, required=True)
    p.add_argument("--out", required=True, help="trajectory folder (appended to if it exists)")
    p.add_argument("--policy", default="mix", help="random | expert | mix (default)")
    p.add_argument("--workers", type=int, default=2, help="env processes (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variation", default=None, help="visual variation of the arm scene")
    p.add_argument("--image-size", type=int, default=64)
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("envs", help="list the registered simulated worlds")
    p.set_defaults(func=cmd_envs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; resume a training run with train.resume=true", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
