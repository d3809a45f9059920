"""Dataset acquisition: verified MNIST from an ordered list of mirrors."""
