"""`python -m stagegraph` runs the stagegraph CLI."""

from .cli import run

run()
