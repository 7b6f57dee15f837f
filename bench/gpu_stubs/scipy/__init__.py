"""Stand-in for scipy (see bench/gpu_stubs/README.md)."""
STUB = True
