import os
import sys
from pathlib import Path

# In-process checks in tests train small models: one thread each, as the worker process does.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# tests import their helpers as `from helpers import ...`
sys.path.insert(0, str(Path(__file__).parent))

# Hypothesis explores new examples on developers' machines; CI replays a fixed, derandomised set so
# that a red build always points at a reproducible failure.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")
