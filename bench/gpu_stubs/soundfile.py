"""Stand-in for soundfile (see bench/gpu_stubs/README.md)."""
STUB = True


def _unavailable(*args, **kwargs):
    raise RuntimeError("soundfile stand-in: audio I/O is unavailable on this machine")


read = write = info = SoundFile = _unavailable
