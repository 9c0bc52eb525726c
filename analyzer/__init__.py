"""stagegraph: static analysis of data-pipeline code (never imports or runs what it analyses)."""

__version__ = "0.1.0"
