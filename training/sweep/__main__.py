"""``python -m training.sweep``: see :mod:`training.sweep.cli`."""

from training.sweep.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
