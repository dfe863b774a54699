"""alignslm: evaluate textless spoken language models on the standard spoken benchmarks."""

__version__ = "0.1.0"
