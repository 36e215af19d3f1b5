"""What variant 3's slower actor does against variant 2, with the fast presets.

python benchmarks/variant_lessons.py --seeds 1 2 3 4 5

Runs ``reinforce_baseline --preset fast`` (actor and critic at the same rate) and
``reinforce_baseline_lr --preset fast`` (the critic 3.3x faster than the actor) on the same
seeds, one after the other in this process, and prints the episodes each needed to solve
CartPole (a greedy mean of 475 over 20 episodes) and their medians. Episode counts do not
depend on the machine's load; the seconds do.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.loop import train
from training.reinforce import variant_script

VARIANTS = {
    "variant 2": variant_script("reinforce_baseline")[0],
    "variant 3": variant_script("reinforce_baseline_lr")[0],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    args = parser.parse_args()
    episodes: dict[str, list[int]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as runs:
        for seed in args.seeds:
            for name, script in VARIANTS.items():
                settings = script.preset(
                    "fast", seed=seed, runs_dir=runs, progress_bar=False, tensorboard=False
                )
                result = train(settings, script)
                episodes[name].append(result.episodes if result.solved else -1)
                print(
                    f"seed {seed} {name}: {result.stop_reason} after {result.episodes} "
                    f"episodes, {result.train_seconds:.1f} s",
                    flush=True,
                )
    for name, counts in episodes.items():
        solved = [count for count in counts if count >= 0]
        median = statistics.median(solved) if solved else float("nan")
        print(f"{name}: solved {len(solved)}/{len(counts)}, median {median:.0f} episodes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
