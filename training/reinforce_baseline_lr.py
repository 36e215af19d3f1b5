"""Variant 3: REINFORCE with a baseline and different learning rates on CartPole-v1.

python -m training.reinforce_baseline_lr                 # the course's variant 3
python -m training.reinforce_baseline_lr --preset fast   # vectorised, solves in seconds

What it changes from variant 2 (training/reinforce.py holds the algorithm; VARIANTS there): the
actor learns slower than the critic, 3e-5 against 1e-4, so the baseline settles before the
policy moves; the fast preset keeps the lesson (a critic 3.3x faster than its actor).
"""

from training.reinforce import variant_script

SCRIPT, main = variant_script("reinforce_baseline_lr", __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
