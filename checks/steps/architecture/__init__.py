"""Step 4, architecture: output layer vs loss, output size, capacity, dead or saturated units,
initialisation scale and dropout, read from one hooked forward pass of a fresh model (model_trace), and
parameters frozen at their random initialisation. Table and tensor projects alike (DESIGN §3b).

Importing this package registers every check (catalog order comes from the registry):

- layers: summary, output_size, capacity
- output_layer: output_layer
- units: dead_units, saturation, init_scale, dropout
- frozen: frozen_layers
"""

from . import frozen, layers, output_layer, units  # noqa: F401  (imported to register their checks)
