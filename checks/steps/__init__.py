"""One module per step: the checks themselves, nothing else. Steps never import each other."""
