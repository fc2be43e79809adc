"""Step 6, metrics: how good is the model, compared with what, and where does it stand on train, valid and test.

Predictions come from analyses/predictions.py (a predictions file, the checkpoint, or the reference
model). Every verdict that compares two numbers allows for sampling noise: bootstrap intervals for
metrics, two-proportion z-tests for per-class recall, a simulated null for calibration error. Each check
measures (`_measure_*(ctx)` -> a small dataclass) and then judges (`*_verdict(m)` -> Finding).

One module per group of checks; importing this package registers all of them (catalog order comes
from the registry, not from the order of these imports):

- scores: summary, vs_baseline, generalization_gap, split_consistency (the model's scores per split and
  against baselines; the baselines themselves are measured in analyses/baselines.py)
- classes: per_class, confusion, calibration (class by class, and predicted probabilities)
"""

# scores first, so the registry holds the checks in nearly catalog order (only split_consistency moves up).
from . import scores, classes  # noqa: F401  (imported to register their checks)
