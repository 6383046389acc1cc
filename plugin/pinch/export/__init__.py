"""Leaving pinch behind: baked weights, shrunk dense models, a compact sparse file."""
