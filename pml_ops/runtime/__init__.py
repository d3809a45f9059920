"""Process runtime: a stage's life (signals, stops, what it kept), pinned child processes, and
`pml-ops repro`'s scheduler that runs DVC stages side by side."""
