"""The ``pinch`` console command."""
