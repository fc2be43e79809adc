"""Step 5, training: read the curves for the engineer and name the pathology.

Two sources of curves:
- the project's training log ([artifacts] training_log, read by io/logs.py), used whenever it is given;
- an instrumented probe (analyses/probe.py): a short run of the project's model with its configured loss,
  optimizer, lr, batch size and train_step, within a share of the run's budget, that records per step the
  loss, per-layer gradient norms, update-to-weight ratios and the fraction of zero ReLU outputs, and per
  epoch the train/valid loss and metric.
The learning-rate range test (analyses/lr_test.py) always trains a fresh model of its own.

Every verdict on a curve is made on smoothed values and compared with the curve's own noise, so an
ordinary mini-batch loss curve of a healthy model stays quiet.

Each check measures (`_measure_*(ctx) -> dataclass`) apart from its verdict (`*_verdict(m) -> Finding`,
pure), so that the thresholds are unit-tested on planted values without building a project.

    lr.py              training.lr_range
    curves.py          training.divergence, oscillation, plateau
    generalisation.py  training.overfitting, underfitting, early_stopping
    gradients.py       training.exploding_gradients, vanishing_gradients, update_ratio
"""

from . import curves, generalisation, gradients, lr  # noqa: F401  (importing registers the checks)
