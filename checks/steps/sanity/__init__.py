"""Step 2, sanity: the data loads, the model builds and runs, and the project's own code behaves.

One module per group of checks; importing this package registers all of them (catalog order comes
from the registry, not from the order of these imports):

- loading: data_loads
- batch: input_batch (and the fixed batches the model checks use on tensor projects)
- model: model_builds, forward_pass, loss_at_init
- steps: loss_shapes, train_step (the project's train_step under observation)
- determinism: eval_determinism (the project's predict twice)
- fitting: overfit_small_batch, gradient_flow (a tiny batch memorised; one backward pass)
- input_dependence: input_independent (real inputs vs zeroed inputs, two short training runs)
- uninformed: what a model that knows nothing scores (no checks)
"""

from . import batch, determinism, fitting, input_dependence, loading, model, steps  # noqa: F401  (imported to register their checks)
