"""pml-ops: reproducible, tracked and tunable probabilistic machine learning."""

__version__ = "0.1.0"
