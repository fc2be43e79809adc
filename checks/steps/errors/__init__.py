"""Step 7, error analysis: which mistakes, where they concentrate, the project's slice unit tests, and
what got worse since the previous run.

Aggregate metrics hide where a model fails. Here errors are broken down by row (confident mistakes), by
automatically discovered segment (weak slices), by the segments the project names ([[slices]]), and by
change against the previous predictions (regressions). Every segment-level claim is a statistical test
with a multiple-testing correction, so a run over hundreds of candidate segments does not cry wolf.

One module per group of checks; importing this package registers all of them (catalog order comes
from the registry, not from the order of these imports):

- mistakes: confident_mistakes (largest residuals for regression)
- segments: weak_slices, slice_tests
- regressions: regressions (against previous predictions, or the previous saved run)
- similar: similar_unlabeled (the unlabeled pool rows like the weak slices and mistakes, to label next)
"""

from . import mistakes, regressions, segments, similar  # noqa: F401  (imported to register their checks)
