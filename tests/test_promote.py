"""tools.promote: a finished run becomes shipped weights with a truthful record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents import CartPoleAgent
from tools.promote import PromotionError, promote_run
from training.loop import train
from training.reinforce import SCRIPT


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings = SCRIPT.preset(
        "fast",
        runs_dir=str(tmp_path_factory.mktemp("runs")),
        max_episodes=8,
        num_envs=2,
        episodes_per_update=2,
        checkpoint_every=4,
        progress_bar=False,
    )
    return train(settings, SCRIPT, command="python -m training.reinforce --tiny").run_dir


def test_promote_copies_the_final_agent_and_records_how_it_was_made(
    finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tools.promote.EVALUATION_EPISODES", 3)
    record = promote_run(finished_run, tmp_path / "weights", docs_dir=tmp_path / "docs")
    shipped = CartPoleAgent.load(tmp_path / "weights" / "cartpole")
    final = CartPoleAgent.load(finished_run / "final")
    for a, b in zip(shipped.model.get_weights(), final.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # the early agent tools.videos --run compares: the first trained checkpoint of two
    early = CartPoleAgent.load(tmp_path / "weights" / "early" / "cartpole")
    assert early.extra_config["training"]["episodes"] == 4
    assert record["early_checkpoint_episode"] == 4
    on_disk = json.loads((tmp_path / "weights" / "cartpole.json").read_text())
    assert on_disk == record
    assert record["command"] == "python -m training.reinforce --tiny"
    assert record["seed"] == 42 and record["training"]["episodes"] == 8
    assert record["evaluation"]["env_cap"]["episodes"] == 3
    assert (tmp_path / "docs" / "cartpole_learning_curve.png").is_file()


def test_promote_never_overwrites_without_being_asked(finished_run: Path, tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "cartpole.keras").write_bytes(b"precious")
    with pytest.raises(PromotionError, match="--overwrite"):
        promote_run(finished_run, weights, docs_dir=tmp_path / "docs")
    assert (weights / "cartpole.keras").read_bytes() == b"precious"


def test_promote_refuses_an_unfinished_run(tmp_path: Path) -> None:
    with pytest.raises(PromotionError, match="not a finished run"):
        promote_run(tmp_path, tmp_path / "weights")


def test_promote_takes_the_early_agent_that_tools_videos_compares(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Course runs name checkpoints by episode index (3, 7 here; 199 ... 999 in full): the
    first of them is the early agent, as the course compares 199 with 999; a run that saved
    only one checkpoint after training falls back on its untrained policy (episode_000000)."""
    monkeypatch.setattr("tools.promote.EVALUATION_EPISODES", 2)
    settings = SCRIPT.preset(
        "fast",
        runs_dir=str(tmp_path / "runs"),
        max_episodes=8,
        num_envs=2,
        episodes_per_update=2,
        checkpoint_every=4,
        checkpoint_names="course",
        progress_bar=False,
    )
    run = train(settings, SCRIPT, command="python -m training.reinforce --course-names").run_dir
    assert (run / "checkpoints" / "3.keras").is_file()
    record = promote_run(run, tmp_path / "weights")
    assert record["early_checkpoint_episode"] == 4
    early = CartPoleAgent.load(tmp_path / "weights" / "early" / "cartpole")
    assert early.extra_config["training"]["episodes"] == 4
    assert (tmp_path / "weights" / "cartpole_learning_curve.png").is_file()  # beside the weights
    for suffix in (".keras", ".config"):  # one trained checkpoint left: the untrained policy
        (run / "checkpoints" / f"3{suffix}").unlink()
    record = promote_run(run, tmp_path / "one")
    assert record["early_checkpoint_episode"] == 0
    # and without the untrained policy either (a run saved before the runs kept it), the
    # only checkpoint
    for suffix in (".keras", ".config"):
        (run / "checkpoints" / f"episode_000000{suffix}").unlink()
    record = promote_run(run, tmp_path / "older")
    assert record["early_checkpoint_episode"] == 8


def test_promote_given_an_agent_prefix_names_its_run_folder(finished_run: Path, tmp_path: Path):
    with pytest.raises(PromotionError, match=rf"pass its run folder {finished_run}$"):
        promote_run(finished_run / "final", tmp_path / "weights")
