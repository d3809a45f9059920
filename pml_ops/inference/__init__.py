"""Generic inference: Stan's NUTS in numpy over any log density with its gradient."""
