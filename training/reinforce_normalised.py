"""Variant 4: normalised advantages and more critic steps, REINFORCE on CartPole-v1.

python -m training.reinforce_normalised                 # the course's variant 4
python -m training.reinforce_normalised --preset fast   # vectorised, solves in seconds

What it changes from variant 3 (training/reinforce.py holds the algorithm; VARIANTS there): the
critic takes 10 steps per episode before the actor's, whose weights G_t - V(s_t) are
standardised within the episode (mean 0, std 1, epsilon 1e-8). At the course's learning rates it
reaches a running reward of only about 29 in 1000 episodes; the fast preset solves.
"""

from training.reinforce import variant_script

SCRIPT, main = variant_script("reinforce_normalised", __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
