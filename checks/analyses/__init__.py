"""Shared computations several checks read (DESIGN §2): each is computed at most once per run."""
