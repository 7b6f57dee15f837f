"""Checking a traced or exported graph against eager PyTorch before it is used or written.

:mod:`twostep_asteroid.export` (TorchScript and ONNX files) and
:mod:`twostep_asteroid.streaming` (the traced streaming step) both refuse a graph whose output
differs from the eager model's by more than float32 rounding: a trace can silently freeze a shape
or a branch, and a mismatch is better caught at export than in a user's runtime.
"""
import numpy as np

#: Tolerance used to validate exports against eager PyTorch, relative to the reference output's peak
#: magnitude: ``max |export - eager| <= EXPORT_ATOL * max(1, max |eager|)``. Relative, because float32
#: rounding scales with the signal; what it was set from: bench/README.md, "Measurements moved from
#: docstrings".
EXPORT_ATOL = 1e-4


def check_parity(name, run, ref, atol=EXPORT_ATOL):
    """Compare ``run()`` with the eager reference ``ref``; failing to run counts as a mismatch.

    Args:
        name (str): What is checked, for the error message (``"The ONNX model"``).
        run (callable): Runs the graph under test on the check input; returns an array.
        ref (array-like): Eager PyTorch's output on the same input.
        atol (float): Tolerance, relative to ``max(1, max |ref|)``.

    Returns:
        float: The largest absolute difference.

    Raises:
        RuntimeError: The shapes differ, the difference is over the bound or not finite, or ``run``
            raised.
    """
    try:
        got = run()
    except Exception as exc:
        raise RuntimeError(f"{name} does not match eager PyTorch: it fails on a [2, {np.asarray(ref).shape[-1]}] "
                           f"input ({type(exc).__name__}: {' '.join(str(exc).split())[:400]})") from exc
    ref = np.asarray(ref)
    err = float(np.max(np.abs(np.asarray(got) - ref))) if ref.size else 0.0
    bound = atol * max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
    if not np.isfinite(err) or err > bound or np.asarray(got).shape != ref.shape:
        raise RuntimeError(f"{name} does not match eager PyTorch: shape {np.asarray(got).shape} vs "
                           f"{ref.shape}, max abs diff {err:.3g} > {bound:.3g} ({atol} x peak)")
    return err
