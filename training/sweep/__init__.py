"""Sweeps on Ray Tune: many seeds, a grid of settings, or an Optuna search; locally or on a
Ray cluster.

Single policy-gradient runs mislead (results swing with the seed), so a sweep trains a
script's ``fast`` preset over many seeds and settings and reports how often and how fast it
solves. Every trial is one call of the scripts' own training loop::

    python -m training.sweep --agent cartpole --seeds 10
    python -m training.sweep --agent pendulum --seeds 5 --grid entropy_coef=0,0.01 --promote
    python -m training.sweep --agent cartpole --search optuna --samples 16 --scheduler asha
    python -m training.sweep --agent cartpole --seeds 20 --address ray://head:10001

Outputs in ``--out``: summary.json and summary.csv (one row per trial, the best trial and its
command), learning_curves.png, settings.png (each setting against the objective), runs/ (each
trial's run folder, TensorBoard logs included) and ray/ (Tune's own records).

The modules: :mod:`~training.sweep.space` parses and checks what to run,
:mod:`~training.sweep.cluster` reaches Ray, :mod:`~training.sweep.driver` runs the trials on
Tune, :mod:`~training.sweep.report` summarises and plots them (without Ray) and
:mod:`~training.sweep.cli` is the command line. Ray and Optuna are the optional ``sweep``
extra; only the cluster and driver modules import them, inside functions.
"""
