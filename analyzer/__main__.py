"""`python -m analyzer` runs the stagegraph CLI."""

from analyzer.cli import run

run()
