"""Foundation layer: errors, atomic file I/O, progress, plotting, process resources and metrics
files. Imports nothing else of pml_ops."""
