"""Data-collection throughput: frames per second written to disk by `worldjepa.stages.collect.collect`.

Target (2-core CPU): 100k Two Rooms frames in at most 3 minutes with 2 workers, i.e. >= 556 frames/s,
start-up of the worker processes included.

    python benchmarks/collect_speed.py                                  # Two Rooms, 100k frames
    python benchmarks/collect_speed.py --env worldjepa/ArmReach-v0 --frames 10000
"""

from __future__ import annotations

import argparse
import tempfile

from worldjepa.envs import make_env
from worldjepa.stages.collect import collect

TARGET_SECONDS_PER_100K = 180.0


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--env", action="append", help="env id (repeatable); default worldjepa/TwoRooms-v0")
    parser.add_argument("--frames", type=int, default=100_000, help="frames to collect per env")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()
    for env_id in args.env or ["worldjepa/TwoRooms-v0"]:
        probe = make_env(env_id, args.image_size)
        frames_per_episode = probe.spec.max_episode_steps + 1
        probe.close()
        episodes = -(-args.frames // frames_per_episode)
        with tempfile.TemporaryDirectory() as out:
            result = collect(env_id, episodes, out, workers=args.workers, image_size=args.image_size)
        fps = result.frames_per_second
        per_100k = 100_000 / fps
        verdict = "meets" if per_100k <= TARGET_SECONDS_PER_100K else "misses"
        print(
            f"{env_id}: {result.frames} frames ({result.episodes} episodes, {args.image_size} px) "
            f"in {result.seconds:.1f} s with {args.workers} workers: {fps:.0f} frames/s, "
            f"100k frames in {per_100k:.0f} s ({verdict} the {TARGET_SECONDS_PER_100K:.0f} s target)"
        )


if __name__ == "__main__":
    main()
