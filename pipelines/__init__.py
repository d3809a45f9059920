"""One thin entry point per DVC stage: read params, call pml_ops, write outputs and metrics."""
