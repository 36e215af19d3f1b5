"""Stable-Baselines3 PPO with the RL Zoo's tuned settings, trained until it solves the task.

The baseline of ``benchmarks/training_speed.py``. Only the Python of a separate virtual
environment with stable-baselines3, CPU torch and gymnasium[mujoco] runs this file (torch is
never a dependency of the project), so it imports nothing from the repository.

Every ``check_every`` environment steps it takes the same solve check as ours: the greedy
policy (SB3's ``deterministic=True``: argmax for CartPole, the clipped mean for the pendulum,
with observations normalised by the frozen ``VecNormalize`` statistics) plays
``eval_episodes`` episodes on vectorised environments, and the mean score must reach the
task's threshold. Like ours, the check gives up as soon as the threshold is out of reach.
Prints one JSON line: solved, env steps, seconds.

    /work/sb3-venv/bin/python benchmarks/sb3_ppo.py --agent pendulum --seed 1
"""

from __future__ import annotations

import argparse
import json
import time

START = time.perf_counter()

#: RL Zoo hyperparams/ppo.yml: CartPole-v1 and InvertedPendulum (tuned for v3; v5 is the
#: same task). "lin_" values decay linearly to 0 over n_timesteps, as the Zoo's schedule does.
ZOO = {
    "cartpole": {
        "env_id": "CartPole-v1",
        "threshold": 475.0,
        "n_envs": 8,
        "n_timesteps": 100_000,
        "normalize": False,
        "ppo": {
            "n_steps": 32,
            "batch_size": 256,
            "gae_lambda": 0.8,
            "gamma": 0.98,
            "n_epochs": 20,
            "ent_coef": 0.0,
            "learning_rate": ("lin", 1e-3),
            "clip_range": ("lin", 0.2),
        },
    },
    "pendulum": {
        "env_id": "InvertedPendulum-v5",
        "threshold": 950.0,
        "n_envs": 1,
        "n_timesteps": 1_000_000,
        "normalize": True,
        "ppo": {
            "n_steps": 32,
            "batch_size": 64,
            "gamma": 0.999,
            "learning_rate": 0.000222425,
            "ent_coef": 1.37976e-07,
            "clip_range": 0.4,
            "n_epochs": 5,
            "gae_lambda": 0.9,
            "max_grad_norm": 0.3,
            "vf_coef": 0.19816,
        },
    },
}
CHECK_EVERY = 4096
EVAL_EPISODES = 20
EVAL_SEED_OFFSET = 1_000_003


def linear_schedule(initial: float):
    """The Zoo's lin_<value>: value * progress_remaining (1 at the start, 0 at n_timesteps)."""
    return lambda progress_remaining: progress_remaining * initial


def greedy_mean(model, normalizer, env_id: str, episodes: int, threshold: float, seed: int):
    """Mean greedy score over ``episodes`` vectorised episodes (env i reset with seed + i),
    or an upper bound on it once the threshold is out of reach. Returns (value, finished)."""
    import gymnasium as gym
    import numpy as np

    envs = gym.make_vec(env_id, episodes, vectorization_mode="sync")
    limit = gym.spec(env_id).max_episode_steps
    try:
        observations, _ = envs.reset(seed=seed)
        totals = np.zeros(episodes)
        lengths = np.zeros(episodes)
        running = np.ones(episodes, dtype=bool)
        while running.any():
            inputs = normalizer.normalize_obs(observations) if normalizer else observations
            actions, _ = model.predict(inputs, deterministic=True)
            observations, rewards, terminated, truncated, _ = envs.step(actions)
            totals += rewards * running
            lengths += running
            running &= ~(terminated | truncated)
            best = totals + np.where(running, limit - lengths, 0.0)
            if best.mean() < threshold:
                return float(best.mean()), False
        return float(totals.mean()), True
    finally:
        envs.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", choices=tuple(ZOO), required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--check-every", type=int, default=CHECK_EVERY, help="env steps")
    parser.add_argument("--eval-episodes", type=int, default=EVAL_EPISODES)
    parser.add_argument(
        "--max-env-steps", type=int, default=0, help="stop here (0: the Zoo's n_timesteps)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (0: torch decides) [1]"
    )
    args = parser.parse_args(argv)

    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    if args.threads:
        torch.set_num_threads(args.threads)
    zoo = ZOO[args.agent]
    hyperparameters = {
        key: linear_schedule(value[1]) if isinstance(value, tuple) else value
        for key, value in zoo["ppo"].items()
    }
    env = make_vec_env(zoo["env_id"], n_envs=zoo["n_envs"], seed=args.seed)
    normalizer = None
    if zoo["normalize"]:
        # The Zoo normalises with the algorithm's discount factor.
        env = normalizer = VecNormalize(env, gamma=zoo["ppo"]["gamma"])
    model = PPO("MlpPolicy", env, seed=args.seed, device="cpu", verbose=0, **hyperparameters)
    checks: list[dict] = []

    class SolveCheck(BaseCallback):
        """Stops learn() once the greedy evaluation reaches the threshold."""

        def __init__(self) -> None:
            super().__init__()
            self.last_check = 0
            self.solved = False

        def _on_step(self) -> bool:
            if args.max_env_steps and self.num_timesteps >= args.max_env_steps:
                return False
            if self.num_timesteps // args.check_every <= self.last_check // args.check_every:
                return True
            self.last_check = self.num_timesteps
            value, finished = greedy_mean(
                model,
                normalizer,
                zoo["env_id"],
                args.eval_episodes,
                zoo["threshold"],
                args.seed * EVAL_SEED_OFFSET + self.num_timesteps,
            )
            checks.append({"env_steps": self.num_timesteps, "mean" if finished else "bound": value})
            self.solved = finished and value >= zoo["threshold"]
            return not self.solved

    callback = SolveCheck()
    # learn() with the Zoo's n_timesteps, so linear schedules decay at the Zoo's pace.
    model.learn(total_timesteps=zoo["n_timesteps"], callback=callback)
    print(
        json.dumps(
            {
                "agent": args.agent,
                "seed": args.seed,
                "solved": callback.solved,
                "env_steps": int(model.num_timesteps),
                "seconds_in_process": time.perf_counter() - START,
                "checks": checks,
                "versions": {
                    "stable_baselines3": __import__("stable_baselines3").__version__,
                    "torch": torch.__version__,
                },
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
