"""Re-train each shipped agent from the command in its record; compare weights and scores.

    python benchmarks/reproduce_weights.py                 # both agents (about 30 s)
    python benchmarks/reproduce_weights.py --agent cartpole

The recorded command runs again into a temporary runs folder, the new final agent's weight
arrays are compared with the shipped ones, and the new agent is scored with the record's own
evaluation settings. Exit 0 only if every array is identical and every score matches.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from training.startup import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()  # comparing weights reads them through Keras

import numpy as np  # noqa: E402

from agents import AGENT_CLASSES  # noqa: E402
from tools.promote import evaluate_shipped  # noqa: E402


def retrain(record: dict, runs_dir: Path) -> Path:
    """Run the recorded command with its runs folder redirected; return the new run folder."""
    words = shlex.split(record["command"])
    if "--runs-dir" in words:
        words[words.index("--runs-dir") + 1] = str(runs_dir)
    else:
        words += ["--runs-dir", str(runs_dir)]
    subprocess.run([sys.executable, *words[1:]], cwd=REPO_ROOT, check=True)
    (run,) = runs_dir.iterdir()
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--agent",
        nargs="+",
        choices=sorted(AGENT_CLASSES),
        default=sorted(AGENT_CLASSES),
        help="which shipped agents",
    )
    args = parser.parse_args(argv)
    all_ok = True
    for kind in args.agent:
        record = json.loads((REPO_ROOT / "weights" / f"{kind}.json").read_text())
        with tempfile.TemporaryDirectory(prefix="reproduce-") as folder:
            run = retrain(record, Path(folder))
            shipped = AGENT_CLASSES[kind].load(REPO_ROOT / "weights" / kind)
            again = AGENT_CLASSES[kind].load(run / "final")
            identical = all(
                np.array_equal(a, b)
                for a, b in zip(shipped.model.get_weights(), again.model.get_weights(), strict=True)
            )
            scores = evaluate_shipped(kind, run / "final")
        same_scores = all(
            scores[cap][key] == record["evaluation"][cap][key]
            for cap in record["evaluation"]
            for key in ("mean", "std", "min", "max")
        )
        all_ok &= identical and same_scores
        print(f"{kind}: {record['command']}")
        print(f"  weights identical to weights/{kind}: {identical}")
        for cap, result in scores.items():
            print(
                f"  {cap}: mean {result['mean']:.1f} min {result['min']:.0f} "
                f"(record: {record['evaluation'][cap]['mean']:.1f}, "
                f"min {record['evaluation'][cap]['min']:.0f})"
            )
    return 0 if all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
