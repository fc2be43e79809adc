"""Step 3, data: missing values, duplicates, leakage, scale, label quality, drift, text hygiene.

Importing this package registers every data check; the order in the catalog comes from the registry
(engine/registry.py CATALOG), not from the order of the modules here.
"""

from . import labels, leakage, relevance, rows, shift, tables, tensors, text, tokens  # noqa: F401  (registration)
