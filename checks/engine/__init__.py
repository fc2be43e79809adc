"""The run machinery: registry, run context, the worker process and its supervisor (DESIGN §2)."""
