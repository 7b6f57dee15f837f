"""The process's CPU allocator: keep freed buffers mapped, or hand free memory back.

PyTorch allocates CPU tensors with the C library's ``malloc``. glibc serves every request above
its mmap threshold (which it never raises above 32 MiB on 64-bit) with a fresh ``mmap`` and unmaps
it again on ``free``. One ``[1, 512, frames]`` float activation of a 60 s input at 8 kHz (stride 10)
is about 98 MB, so every such buffer of a separator's forward is mapped, page-faulted and zeroed
anew by the kernel: millions of minor page faults per forward, which can cost more than the
arithmetic (measured in ``bench/README.md``, "Page faults on long inputs").

:func:`retain_freed_memory` makes glibc take all memory from its heap and never trim it, so freed
buffers are reused by the next allocation instead. :func:`release_free_memory` gives the heap's
free pages back explicitly, where memory matters more than speed.

Both are process-wide settings of the C library, so only entry points call them (the
``twostep-separate`` command and the benchmark), never library code on a user's behalf. Both are
no-ops (returning ``False``) where the C library is not glibc.

References:
    glibc manual, "Malloc Tunable Parameters" (``M_MMAP_MAX``, ``M_TRIM_THRESHOLD``) and
    ``malloc_trim(3)``.
"""
import ctypes

# mallopt(3) parameter numbers, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1  # the largest int mallopt takes: trim only when malloc_trim is called

_LIBC = None
_RETAINED = False


def _glibc():
    """glibc as a ctypes library, or ``None`` where there is none (musl, macOS, Windows)."""
    global _LIBC
    if _LIBC is None:
        _LIBC = False
        try:
            libc = ctypes.CDLL("libc.so.6")  # glibc's soname; find_library would run ldconfig
            if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim"):
                _LIBC = libc
        except OSError:
            pass
    return _LIBC or None


def retain_freed_memory():
    """Serve all allocations from the heap and keep freed memory there, for reuse.

    Afterwards large tensors are no longer mapped and unmapped one by one: a long input's forward
    pass faults in its peak working set once, not every buffer anew. The cost is that the
    process's resident memory stays at its peak until it exits or calls
    :func:`release_free_memory`. Idempotent.

    Returns:
        bool: ``True`` if glibc took both settings (or already had), ``False`` otherwise.
    """
    global _RETAINED
    if _RETAINED:
        return True
    libc = _glibc()
    if libc is None:
        return False
    _RETAINED = bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, _NEVER_TRIM))
    return _RETAINED


def release_free_memory():
    """Give the heap's free pages back to the kernel (``malloc_trim(0)``).

    Returns:
        bool: ``True`` if glibc released memory, ``False`` if none was released or there is no glibc.
    """
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
