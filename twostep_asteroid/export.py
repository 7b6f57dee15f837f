"""Export the inference graph (waveform ``[batch, time]`` -> sources ``[batch, n_src, time]``)
to TorchScript and ONNX.

* TorchScript: ``torch.jit.trace`` of the eval-mode model. Tracing records the shape arithmetic of
  the encoder/decoder (``pad_x_to_y``), so the traced module takes any batch size and length; the
  export checks that on a second length against eager PyTorch and refuses to write a module that
  does not match.
* ONNX: ``torch.onnx.export`` with the TorchScript-based exporter (``dynamo=False``), opset 17 by
  default, dynamic batch and time axes. torch 2.9 made the torch.export-based ("dynamo") exporter
  the default, but it needs the ``onnxscript`` package; the TorchScript-based one needs nothing
  beyond ``onnx`` and exports this model in about a second. ``exporter="dynamo"`` works too when
  ``onnxscript`` is installed (checked with onnxscript 0.7.2 / onnx-ir 1.1.0: opset 18, same
  parity, ~10x slower to export). The exported file is checked with ``onnxruntime`` when installed.

The streaming step of a causal model (:class:`~twostep_asteroid.streaming.StreamingStep`) exports
the same ways with its state as explicit inputs and outputs (:func:`export_streaming_torchscript`,
:func:`export_streaming_onnx`, ``--streaming``), so that a runtime outside Python can stream.

The depthwise convolutions of :class:`~twostep_asteroid.masknn.DilatedDepthwiseConv1d` run as
``F.conv1d`` under tracing and export, and Asteroid's gLN is made of mean/pow ops, so the whole
model exports as plain ONNX ops. Measured parity on CPU (small and paper configs): max abs
difference below 1e-6; the tests use ``atol=1e-4``.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .fileio import atomic_target

#: Tolerance used to validate exports against eager PyTorch, relative to the reference output's peak
#: magnitude: ``max |export - eager| <= EXPORT_ATOL * max(1, max |eager|)``. Relative, because float32
#: rounding scales with the signal. Measured (untrained small model, onnxruntime 1.32, opset 17): up to
#: 7.8e-5 x peak; TorchScript: exact.
EXPORT_ATOL = 1e-4
DEFAULT_OPSET = 17


class SeparationGraph(nn.Module):
    """The inference graph of a separation model: ``[batch, time] -> [batch, n_src, time]``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, mixture):
        return self.model(mixture)


def _prepare(model):
    """Eval-mode graph on CPU (a CPU copy of a model that lives elsewhere)."""
    param = next(iter(model.parameters()), None)
    if param is not None and param.device.type != "cpu":
        import copy

        model = copy.deepcopy(model).cpu()
    return SeparationGraph(model.eval()).eval()


def _example(model, seconds, batch=1):
    rate = float(getattr(model, "sample_rate", None) or 8000.0)
    gen = torch.Generator().manual_seed(0)
    return torch.randn(batch, max(64, int(seconds * rate)), generator=gen)


@contextlib.contextmanager
def _quiet_onnx_export():
    """The tracer's and the legacy exporter's warnings, which say nothing about this model, silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        for message in (".*legacy TorchScript-based ONNX export.*", ".*will be removed.*", ".*Constant folding.*"):
            warnings.filterwarnings("ignore", message=message)
        yield


def _check(name, run, ref, atol):
    """Compare ``run()`` with ``ref``; a failure to run on the new shape is a mismatch too."""
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


def export_torchscript(model, path, example_seconds=1.0, check_seconds=1.37, atol=EXPORT_ATOL):
    """Trace ``model`` to TorchScript and save it (atomically) to ``path``.

    Args:
        model: A separation model (e.g. :class:`~twostep_asteroid.models.TwoStepTDCN`).
        path (str or Path): Output ``.pt`` file; load it with ``torch.jit.load``.
        example_seconds (float): Length of the tracing input.
        check_seconds (float): Another length (and batch 2) the traced module is checked on.
        atol (float): Tolerance of that check.

    Returns:
        pathlib.Path: ``path``.
    """
    graph = _prepare(model)
    example = _example(model, example_seconds)
    with torch.no_grad(), warnings.catch_warnings():
        # Python-side shape checks (e.g. the decoder's input check) become constants: fine for a
        # fixed rank, and the length/batch generalisation is verified just below.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(graph, example, check_trace=False)
        check = _example(model, check_seconds, batch=2)
        _check("The traced module", lambda: traced(check).numpy(), graph(check).numpy(), atol)
    return _save_torchscript(traced, path)


def export_onnx(model, path, opset=DEFAULT_OPSET, example_seconds=1.0, check_seconds=1.37,
                atol=EXPORT_ATOL, exporter="torchscript", verify=True):
    """Export ``model`` to ONNX (input ``mixture [batch, time]``, output ``sources [batch, n_src, time]``,
    batch and time dynamic) and save it atomically to ``path``.

    Args:
        model: A separation model.
        path (str or Path): Output ``.onnx`` file.
        opset (int): ONNX opset (>= 17).
        example_seconds (float): Length of the export input.
        check_seconds (float): Another length (and batch 2) checked with ``onnxruntime``.
        atol (float): Tolerance of that check.
        exporter (str): ``"torchscript"`` (default, ``dynamo=False``) or ``"dynamo"`` (needs ``onnxscript``).
        verify (bool): Run the ``onnxruntime`` check (skipped with a warning if not installed).

    Returns:
        pathlib.Path: ``path``.
    """
    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    if exporter not in ("torchscript", "dynamo"):
        raise ValueError(f"exporter must be 'torchscript' or 'dynamo', got {exporter!r}")
    graph = _prepare(model)
    example = _example(model, example_seconds)
    with atomic_target(path) as tmp:
        with torch.no_grad(), _quiet_onnx_export():
            if exporter == "torchscript":
                torch.onnx.export(
                    graph, (example,), str(tmp), dynamo=False, opset_version=opset,
                    input_names=["mixture"], output_names=["sources"],
                    dynamic_axes={"mixture": {0: "batch", 1: "time"}, "sources": {0: "batch", 2: "time"}},
                )
            else:
                # torch.export specialises size-1 dimensions: export with a batch of 2, and let it
                # infer the dynamic dims (named Dims hit a spurious "batch != 1" guard).
                example = _example(model, example_seconds, batch=2)
                batch, time = torch.export.Dim.AUTO, torch.export.Dim.AUTO
                if opset < 18:  # its native opset; onnx's converter has no Pad adapter down to 17
                    warnings.warn(f"exporter='dynamo' writes opset 18, not {opset}.")
                    opset = 18
                torch.onnx.export(
                    graph, (example,), str(tmp), dynamo=True, opset_version=opset,
                    input_names=["mixture"], output_names=["sources"],
                    dynamic_shapes={"mixture": {0: batch, 1: time}}, external_data=False,
                )
        session = _onnx_session(tmp) if verify else None
        if session is not None:
            check = _example(model, check_seconds, batch=2)
            with torch.no_grad():
                ref = graph(check).numpy()
            _check("The ONNX model", lambda: session.run(None, {"mixture": check.numpy()})[0], ref, atol)
    return Path(path)


# ---------------------------------------------------------------------------------------------
# Streaming step (causal models): state as explicit inputs and outputs
# ---------------------------------------------------------------------------------------------
STREAM_INPUTS = ["chunk", "enc_state", "masker_state", "dec_state"]
STREAM_OUTPUTS = ["sources", "next_enc_state", "next_masker_state", "next_dec_state"]


def _streaming_graph(model):
    from .streaming import StreamingStep

    model = _prepare(model).model
    return StreamingStep(model).eval()


def trace_streaming_step(step, example_frames=4, atol=EXPORT_ATOL):
    """``torch.jit.trace`` a :class:`~twostep_asteroid.streaming.StreamingStep` (batch 1 example,
    K = ``example_frames``), checked against eager on another K and batch, two steps chained.

    Returns:
        torch.jit.ScriptModule: the traced step (same signature).
    """
    example = stream_examples(step, example_frames, 1, seed=0)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(step, example, check_trace=False)

        def run(arrays):
            return [t.numpy() for t in traced(*[torch.from_numpy(np.ascontiguousarray(a)) for a in arrays])]

        check_streaming_step("The traced streaming step", run, step, atol)
    return traced


def streaming_metadata(step):
    """What a runtime needs to drive an exported step (also stored in the ONNX file's metadata)."""
    masker = step.model.masker
    return {
        "sample_rate": str(float(step.model.sample_rate)),
        "kernel_size": str(step.kernel_size),
        "stride": str(step.stride),
        "n_src": str(step.n_src),
        "enc_state_shape": f"[batch, {step.context}]",
        "masker_state_shape": f"[batch, {masker.state_frames}, {masker.hid_chan}]",
        "dec_state_shape": f"[batch, {step.n_src}, {step.context}]",
        "latency_samples": str(step.model.latency_samples),
        "protocol": ("chunk: K*stride new samples; start with enc_state = the first kernel_size - stride "
                     "samples of the stream and zero masker/dec states; feed next_* back; sources are "
                     "K*stride final samples from stream sample (samples pushed - K*stride - "
                     "(kernel_size - stride)) on; at the end, the last dec_state is the output's tail."),
    }


def stream_examples(step, frames, batch, seed):
    gen = torch.Generator().manual_seed(seed)
    enc, masker, dec = step.initial_state(batch, device="cpu")
    chunk = torch.randn(batch, frames * step.stride, generator=gen)
    enc = torch.randn(enc.shape, generator=gen)
    masker = torch.randn(masker.shape, generator=gen)
    dec = torch.randn(dec.shape, generator=gen)
    return chunk, enc, masker, dec


def check_streaming_step(name, run, step, atol=EXPORT_ATOL, frames=7, batch=2):
    """Run the exported step on another K and batch, and on its own outputs, against eager."""
    inputs = stream_examples(step, frames, batch, seed=1)
    with torch.no_grad():
        ref = step(*inputs)
        ref2 = step(inputs[0].flip(-1), *ref[1:])
    got = run([t.numpy() for t in inputs])
    got2 = run([inputs[0].flip(-1).numpy()] + [np.asarray(g) for g in got[1:]])
    for i, (g, r) in enumerate(zip(list(got) + list(got2), list(ref) + list(ref2))):
        _check(f"{name} ({(STREAM_OUTPUTS * 2)[i]})", lambda g=g: np.asarray(g), r.numpy(), atol)


def _onnx_session(path):
    """An onnxruntime CPU session on ``path`` to check an export, or ``None`` (with a warning) when
    onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        warnings.warn("onnxruntime is not installed: the ONNX export was not checked "
                      "(pip install twostep-asteroid[export]).")
        return None
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _save_torchscript(traced, path):
    """``torch.jit.save`` to a temporary file renamed over ``path``: never half a file there."""
    with atomic_target(path) as tmp:
        torch.jit.save(traced, str(tmp))
    return Path(path)


def export_streaming_torchscript(model, path, example_frames=4, atol=EXPORT_ATOL):
    """Trace the streaming step of a causal model (:class:`~twostep_asteroid.streaming.StreamingStep`)
    to TorchScript and save it atomically: ``module(chunk, enc_state, masker_state, dec_state) ->
    (sources, next_enc_state, next_masker_state, next_dec_state)``, any batch and chunk of K frames.

    Checked against eager PyTorch on another K and batch, two steps chained, before writing.
    """
    traced = trace_streaming_step(_streaming_graph(model), example_frames, atol)
    return _save_torchscript(traced, path)


def export_streaming_onnx(model, path, opset=DEFAULT_OPSET, example_frames=4, atol=EXPORT_ATOL, verify=True):
    """Export the streaming step of a causal model to ONNX (inputs :data:`STREAM_INPUTS`, outputs
    :data:`STREAM_OUTPUTS`, dynamic batch and chunk length) with :func:`streaming_metadata` in the
    file's metadata, checked with ``onnxruntime`` on another K and batch, two steps chained."""
    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    step = _streaming_graph(model)
    example = stream_examples(step, example_frames, 1, seed=0)
    axes = {"chunk": {0: "batch", 1: "time"}, "sources": {0: "batch", 2: "time"}}
    for name in STREAM_INPUTS[1:] + STREAM_OUTPUTS[1:]:
        axes[name] = {0: "batch"}
    with atomic_target(path) as tmp:
        with torch.no_grad(), _quiet_onnx_export():
            torch.onnx.export(step, example, str(tmp), dynamo=False, opset_version=opset,
                              input_names=STREAM_INPUTS, output_names=STREAM_OUTPUTS, dynamic_axes=axes)
        import onnx

        proto = onnx.load(str(tmp))
        for key, value in streaming_metadata(step).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))
        session = _onnx_session(tmp) if verify else None
        if session is not None:
            check_streaming_step("The ONNX streaming step",
                                 lambda arrays: session.run(None, dict(zip(STREAM_INPUTS, arrays))), step, atol)
    return Path(path)


def onnx_separate(path_or_session, mixture):
    """Run an exported ONNX model with ``onnxruntime``: ``[batch, time]`` (or ``[time]``) numpy
    float32 in, ``[batch, n_src, time]`` (or ``[n_src, time]``) out."""
    import onnxruntime as ort

    session = path_or_session
    if not isinstance(session, ort.InferenceSession):
        session = ort.InferenceSession(str(path_or_session), providers=["CPUExecutionProvider"])
    mixture = np.asarray(mixture, dtype=np.float32)
    squeeze = mixture.ndim == 1
    out = session.run(None, {"mixture": mixture[None] if squeeze else mixture})[0]
    return out[0] if squeeze else out


def export_main(argv=None):
    """``python -m twostep_asteroid.export --model X [--onnx out.onnx] [--torchscript out.pt]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m twostep_asteroid.export", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="local file/folder, Hub id org/name[@rev] or Hub URL")
    parser.add_argument("--onnx", help="write an ONNX file here")
    parser.add_argument("--torchscript", help="write a TorchScript (.pt) file here")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    parser.add_argument("--exporter", choices=("torchscript", "dynamo"), default="torchscript")
    parser.add_argument("--streaming", action="store_true",
                        help="export the streaming step of a causal model (state as inputs/outputs) "
                             "instead of the whole-signal graph")
    args = parser.parse_args(argv)
    if not args.onnx and not args.torchscript:
        parser.error("give --onnx and/or --torchscript")
    from .inference import load_model

    model = load_model(args.model, device="cpu")
    if args.streaming:
        if args.torchscript:
            print(f"TorchScript streaming step: {export_streaming_torchscript(model, args.torchscript)}")
        if args.onnx:
            print(f"ONNX streaming step: {export_streaming_onnx(model, args.onnx, opset=args.opset)}")
        return 0
    if args.torchscript:
        print(f"TorchScript: {export_torchscript(model, args.torchscript)}")
    if args.onnx:
        print(f"ONNX: {export_onnx(model, args.onnx, opset=args.opset, exporter=args.exporter)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(export_main())
