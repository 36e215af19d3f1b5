"""Variant 2: REINFORCE with a learned baseline on CartPole-v1.

python -m training.reinforce_baseline                 # the course's variant 2
python -m training.reinforce_baseline --preset fast   # vectorised, solves in seconds

What it changes from variant 1 (training/reinforce.py holds the algorithm; VARIANTS there): a
critic V(s), 4 -> 128 ReLU -> 1, takes one Huber step towards G_t (its own Adam, 3e-4) before
each actor step, which weights by G_t - V(s_t) (V as it was while acting). At an early stop this
saves the actor, where the course saves another model.
"""

from training.reinforce import variant_script

SCRIPT, main = variant_script("reinforce_baseline", __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
