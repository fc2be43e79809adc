import os
import sys
from pathlib import Path

# In-process checks in tests train small models: one thread each, as the worker process does.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# tests import their helpers as `from helpers import ...`
sys.path.insert(0, str(Path(__file__).parent))
