"""`worldjepa` command line: demo, collect, pretrain, probe, posttrain, readout, evaluate, convert, envs.

Every subcommand turns bad input into one line on stderr (`error: ...` saying what to fix) and exit
status 2, instead of a traceback.
"""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from worldjepa.errors import UserError, one_line


def _preset_args(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--config", "-c", default=default, help=f"preset name or YAML path (default {default})")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="override preset values")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (shortcut for train.device=...)")


def _device_override(args: argparse.Namespace, key: str) -> list[str]:
    return [f"{key}={args.device}"] if args.device else []


def cmd_pretrain(args: argparse.Namespace) -> None:
    from worldjepa.presets import PretrainPreset, load_config
    from worldjepa.stages.pretrain import run_pretrain
    from worldjepa.train.distributed import dist_info

    overrides = [*args.overrides, *_device_override(args, "train.device")]
    cfg = load_config(args.config, overrides, PretrainPreset)
    run_dir = Path(args.run_dir or f"runs/{Path(args.config).stem}")
    metrics = run_pretrain(cfg, run_dir)
    if dist_info().is_main:
        loss = metrics.get("loss", float("nan"))
        print(f"done: {run_dir} (final loss {loss:.4f}); next: worldjepa probe --run {run_dir}")


def cmd_probe(args: argparse.Namespace) -> None:
    from worldjepa.stages.probe import run_probe

    overrides = [*args.overrides, *_device_override(args, "train.device")]
    print(run_probe(Path(args.run), overrides).table())


def cmd_collect(args: argparse.Namespace) -> None:
    from worldjepa.stages.collect import collect, write_episode_preview

    result = collect(
        args.env,
        args.episodes,
        args.out,
        policy=args.policy,
        expert_fraction=args.expert_fraction,
        workers=args.workers,
        seed=args.seed,
        variation=args.variation,
        image_size=args.image_size,
    )
    preview = write_episode_preview(args.out, Path(args.out) / "preview.gif")
    print(f"{result}\npreview: {preview}")


def cmd_posttrain(args: argparse.Namespace) -> None:
    from worldjepa.data.trajectories import check_env
    from worldjepa.stages.posttrain import WORLD_MODEL_DIR, run_posttrain, save_ablation_encoder

    cfg = _world_model_config(args)
    check_env(args.data, cfg.env.id, cfg.env.image_size)
    encoder = Path(args.encoder)
    if args.encoder in ("random", "pixels"):  # ablations: stage 1 skipped, or no encoder at all
        folder = Path(args.run_dir) / f"{args.encoder}_encoder"
        encoder = save_ablation_encoder(args.encoder, cfg.stage1(args.data), folder)
    run_posttrain(cfg.world_model, encoder, Path(args.data), Path(args.run_dir), args.overwrite)
    print(f"world model saved in {Path(args.run_dir) / WORLD_MODEL_DIR}")


def cmd_readout(args: argparse.Namespace) -> None:
    from worldjepa.data.trajectories import check_env
    from worldjepa.stages.posttrain import WORLD_MODEL_DIR, run_readout_refit

    cfg = _world_model_config(args)
    check_env(args.data, cfg.env.id, cfg.env.image_size)
    run_readout_refit(cfg.world_model, Path(args.model), Path(args.data), Path(args.run_dir), args.overwrite)
    print(f"world model with the new state readout saved in {Path(args.run_dir) / WORLD_MODEL_DIR}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from worldjepa.stages.evaluate import format_table, run_evaluate

    cfg = _world_model_config(args)
    print(format_table(run_evaluate(args.model, cfg, Path(args.out), args.data)))


def cmd_demo(args: argparse.Namespace) -> None:
    from worldjepa.demo import SHIPPED_MODELS, run_demo
    from worldjepa.stages.posttrain import WORLD_MODEL_DIR

    args.overrides = ["evaluate.split=test", *args.overrides]  # the demo reports: test seeds, unless asked
    cfg = _world_model_config(args)
    run_dir = Path(args.run_dir)
    if args.train and (run_dir / WORLD_MODEL_DIR / "config.json").is_file():
        raise UserError(
            f"{run_dir} already holds a trained world model, which --train would reuse instead of training one; "
            f"plan with it (--model {run_dir / WORLD_MODEL_DIR}) or train in a new --run-dir"
        )
    if args.train and (run_dir / "eval").exists() and not args.overwrite:
        raise UserError(
            f"{run_dir / 'eval'} holds the reports of an earlier demo; pass --overwrite to replace them, or "
            "train in a new --run-dir"
        )
    shipped = SHIPPED_MODELS.get(args.config)
    model = args.model or (None if args.train or shipped is None or not shipped.is_dir() else shipped)
    if model is not None:
        print(f"planning with the world model in {model} (train one from scratch with --train)")
    elif not args.train:
        print(f"no world model is shipped for {args.config}: training every stage")
    print(run_demo(cfg, run_dir, model))


def _world_model_config(args: argparse.Namespace):
    from worldjepa.presets import WorldModelPreset, load_config

    overrides = [*args.overrides, *_device_override(args, "world_model.train.device")]
    return load_config(args.config, overrides, WorldModelPreset)


def cmd_convert(args: argparse.Namespace) -> None:
    import yaml

    from worldjepa.interop import convert

    try:
        overrides = yaml.safe_load(args.overrides) if args.overrides else None
    except yaml.YAMLError as error:
        raise UserError(f"--overrides is not valid YAML: {one_line(error)}") from None
    if overrides is not None and not (
        isinstance(overrides, dict) and all(isinstance(v, dict) for v in overrides.values())
    ):
        raise UserError("--overrides must map a part to its arguments, e.g. {predictor: {img_size: 384}}")
    out = convert(
        args.src, args.dst, args.src_format, args.dst_format, args.part, args.dtype, overrides, args.overwrite
    )
    print(f"wrote {out}")


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
    p.add_argument(
        "--expert-fraction", type=float, default=0.5, help="share of expert episodes in a mix (default 0.5)"
    )
    p.add_argument("--workers", type=int, default=2, help="env processes (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variation", default=None, help="visual variation of the arm scene")
    p.add_argument("--image-size", type=int, default=64)
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("demo", help="the main job: collect, train a world model, plan toward goal images")
    _preset_args(p, "wm_arm_reach")
    p.add_argument("--run-dir", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--model", help="plan with this saved world model instead of the shipped one")
    p.add_argument(
        "--train", action="store_true", help="train every stage from scratch (about 12 min on 2 cores)"
    )
    p.add_argument("--overwrite", action="store_true", help="with --train: replace earlier reports in eval/")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("posttrain", help="stage 2: action-conditioned predictor over a frozen encoder")
    _preset_args(p, "wm_arm_reach")
    p.add_argument(
        "--encoder",
        required=True,
        help="a stage-1 run folder, a model folder from `convert`, or an ablation: `random` (a random-init "
        "encoder of stage 1's shape) or `pixels` (raw pixel patches as the latent)",
    )
    p.add_argument("--data", required=True, help="a trajectory folder from `worldjepa collect`")
    p.add_argument("--run-dir", required=True, help="output folder (the world model goes to world_model/)")
    p.add_argument("--overwrite", action="store_true", help="replace a world model already in the run dir")
    p.set_defaults(func=cmd_posttrain)

    p = sub.add_parser(
        "readout",
        help="fit a world model's state readout anew on other recordings (e.g. randomised lights), the rest kept",
    )
    _preset_args(p, "wm_arm_reach")
    p.add_argument("--model", required=True, help="a world model folder (written by posttrain)")
    p.add_argument("--data", required=True, help="a trajectory folder from `worldjepa collect`")
    p.add_argument("--run-dir", required=True, help="output folder (the world model goes to world_model/)")
    p.add_argument("--overwrite", action="store_true", help="replace a world model already in the run dir")
    p.set_defaults(func=cmd_readout)

    p = sub.add_parser("evaluate", help="closed-loop planning toward goal images, with baselines")
    _preset_args(p, "wm_arm_reach")
    p.add_argument("--model", required=True, help="a world model folder (written by posttrain)")
    p.add_argument("--data", help="its training trajectories: evaluation seeds are checked against them")
    p.add_argument("--out", default="runs/evaluate", help="folder for GIFs and plots")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("convert", help="official / Hugging Face / worldjepa checkpoints, both ways")
    p.add_argument("src", help="an official .pth.tar / .pt file, or a Hugging Face or worldjepa folder")
    p.add_argument("dst", help="output folder")
    p.add_argument("--from", dest="src_format", required=True, choices=["official", "hf", "worldjepa"])
    p.add_argument("--to", dest="dst_format", required=True, choices=["worldjepa", "hf"])
    p.add_argument("--part", default="target_encoder", help="target_encoder | encoder | predictor, or a+b")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    p.add_argument(
        "--overrides", help='YAML, e.g. "{predictor: {img_size: 384}}" for what weights cannot show'
    )
    p.add_argument("--overwrite", action="store_true", help="replace DST when it already holds a model")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("envs", help="list the registered simulated worlds")
    p.set_defaults(func=cmd_envs)
    return parser


def _check_output_folders(args: argparse.Namespace) -> None:
    """Output folders (--out, --run-dir) must not be files: found before any work, not at the first write."""
    for option in ("out", "run_dir"):
        path = getattr(args, option, None)
        if path and Path(path).exists() and not Path(path).is_dir():
            raise UserError(
                f"--{option.replace('_', '-')} {path} is a file, not a folder; pass a folder path"
            )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_output_folders(args)
        args.func(args)
    except UserError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" while writing {error.filename}" if error.filename else ""
        print(f"error: disk full{where}; checkpoints and folders written before are intact", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted; what finished is saved (resume a training run with train.resume=true; collect "
            "appends to its folder)",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
