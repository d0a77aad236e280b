"""How far off is a Two Rooms world model's proprio head where the planner needs it: at the wall and the door?

The planner rolls future positions forward with the learned, image-blind proprio head, so its errors at the
wall and in the door decide whether it sees that a detour to the door reaches the goal. Against the
simulator (only this measurement sees it):
- one model step (frame skip k) of a held uniform random move from 4,000 uniform starts, half of them near
  the middle wall, split into free moves, moves a wall stops, and moves through the door: the error of the
  predicted position, in world px;
- 10 model steps of the scripted expert's moves, each step's moves held as the planner holds them, from 300
  starts pressed against the wall with the goal in the other room: the final error, and the share of
  rollouts that end more than 5 px off.

`--refit N` also fits a fresh head the way post-training does (the preset's `proprio_fit`, per move if it
says so, `--steps` to change its length) on a new collection of N episodes (the preset's policy mix,
states and actions only) and reports it on the same tests, beside the model's own head.

    python benchmarks/proprio_head_error.py --model runs/tr26/world_model [--refit 3000 --steps 64000]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from worldjepa.envs.two_rooms import TwoRoomsEnv
from worldjepa.methods.proprio_fit import Transitions, episode_transitions, fit_proprio_head
from worldjepa.nn.proprio_head import unroll_states
from worldjepa.planning.ac_world_model import ACWorldModel
from worldjepa.presets import WorldModelPreset, load_config
from worldjepa.stages.collect import episode_plan, run_episode
from worldjepa.stages.posttrain import proprio_head

KINDS = ("free", "stopped by a wall", "through the door")
HORIZON = 10


def held_rollout(env: TwoRoomsEnv, start: np.ndarray, moves: np.ndarray, skip: int) -> np.ndarray:
    """Positions after each model step of `moves` [H, 2], each held for `skip` env moves."""
    env._pos, positions = start.copy(), []
    for move in moves:
        for _ in range(skip):
            env._pos = env._move(env._pos, move)
        positions.append(env._pos.copy())
    return np.array(positions)


def one_step_tests(env: TwoRoomsEnv, skip: int, rng: np.random.Generator) -> tuple:
    """(starts, actions [M, skip*2], true next positions, kind index) of held random moves."""
    starts, actions, ends, kinds = [], [], [], []
    low, high = env.agent_radius + 3.0, 65.0 - env.agent_radius - 3.0
    for i in range(4000):
        while True:
            start = rng.uniform(low, high, 2)
            if i % 2:  # near the middle wall
                start[0] = rng.uniform(20.0, 45.0)
            if not env._blocked(start):
                break
        move = rng.uniform(-env.max_step_px, env.max_step_px, 2)
        end = held_rollout(env, start, move[None], skip)[0]
        free = np.clip(start + skip * move, low, high)
        crossed = env._room(start) != env._room(end)
        kinds.append(2 if crossed else int(np.linalg.norm(free - end) > 0.5))
        starts.append(start), actions.append(np.tile(move, skip)), ends.append(end)
    return tuple(torch.tensor(np.array(x), dtype=torch.float32) for x in (starts, actions, ends, kinds))


def wall_start_tests(env: TwoRoomsEnv, skip: int, rng: np.random.Generator) -> tuple:
    """(starts, held expert actions [M, H, skip*2], true positions [M, H, 2]) from starts at the wall."""
    starts, actions, paths = [], [], []
    for i in range(300):
        env.reset(seed=20_000 + i)  # the goal and the door; the start is moved against the wall
        face = 29.5 if env._room(env._pos) == 0 else 35.5
        start = np.array([face, rng.uniform(30.0, 60.0)])
        env._pos, moves = start.copy(), []
        for _ in range(HORIZON * skip):
            moves.append(env.expert_action())
            env._pos = env._move(env._pos, moves[-1])
        held = np.array(moves).reshape(HORIZON, skip, 2).mean(1)
        starts.append(start), actions.append(np.repeat(held, skip, axis=0).reshape(HORIZON, -1))
        paths.append(held_rollout(env, start, held, skip))
    return tuple(torch.tensor(np.array(x), dtype=torch.float32) for x in (starts, actions, paths))


def collected_transitions(cfg: WorldModelPreset, episodes: int, skip: int) -> Transitions:
    """Every (state, k actions, state k moves later) of a fresh collection with the preset's policy mix."""
    env = cfg.env.make()
    noise, seed = cfg.collect.noise, cfg.collect.seed + 1  # not the training collection's episodes
    per_episode = []
    for episode in range(episodes):
        plan = episode_plan(seed, episode, cfg.collect.policy, cfg.collect.expert_fraction)
        recorded = run_episode(env, *plan, noise=noise)
        s, a = torch.tensor(recorded["states"]), torch.tensor(recorded["actions"])
        per_episode.append(episode_transitions(s, a, skip))
    return Transitions(*(torch.cat(part) for part in zip(*per_episode, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", "-c", default="wm_two_rooms")
    parser.add_argument("--model", required=True)
    parser.add_argument(
        "--refit", type=int, default=0, help="also fit a head on a fresh collection of N episodes"
    )
    parser.add_argument("--steps", type=int, default=0, help="fit steps of the refit (0: the preset's)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, [], WorldModelPreset)
    model = ACWorldModel.load(args.model)
    skip = model.trained_on["frame_skip"]
    env = cfg.env.make().unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    starts, actions, ends, kinds = one_step_tests(env, skip, rng)
    wall_starts, wall_actions, wall_paths = wall_start_tests(env, skip, rng)
    heads = {"the model's head": model.proprio_head}
    if args.refit:
        fit = dataclasses.replace(
            cfg.world_model.proprio_fit, steps=args.steps or cfg.world_model.proprio_fit.steps
        )
        tic = time.perf_counter()
        head = proprio_head(cfg.world_model, starts.shape[1], actions.shape[1], 0)
        data = collected_transitions(cfg, args.refit, skip // head.moves)  # one move for a per-move head
        fit_proprio_head(head, data.states, data.actions, data.next_states, fit, "cpu", progress_bar=False)
        name = f"refit: {args.refit} episodes, {fit.steps} steps ({time.perf_counter() - tic:.0f} s)"
        heads[name] = head
    print(f"{'head':44s} {'one step (px): ' + ' / '.join(KINDS):52s} 10 steps from the wall: mean, > 5 px")
    for name, head in heads.items():
        with torch.no_grad():
            one = (head(starts, actions) - ends).norm(dim=-1)
            last = (unroll_states(head, wall_starts, wall_actions)[:, -1] - wall_paths[:, -1]).norm(dim=-1)
        steps = " / ".join(f"{one[kinds == k].mean():.2f}" for k in range(len(KINDS)))
        print(f"{name:44s} {steps:52s} {last.mean():.2f} px, {(last > 5).float().mean():.0%}")


if __name__ == "__main__":
    main()
