"""Constructs of the settlement stack, one per concern (named to avoid the ``constructs`` lib)."""
