"""Export the inference graph (waveform ``[batch, time]`` -> sources ``[batch, n_src, time]``)
to TorchScript and ONNX.

* TorchScript: ``torch.jit.trace`` of the eval-mode model. Tracing records the shape arithmetic of
  the encoder/decoder (``pad_x_to_y``), so the traced module takes any batch size and length; the
  export checks that on a second length against eager PyTorch and refuses to write a module that
  does not match.
* ONNX: ``torch.onnx.export`` with the TorchScript-based exporter (``dynamo=False``), opset 17 by
  default, dynamic batch and time axes. torch 2.9 made the torch.export-based ("dynamo") exporter
  the default, but it needs the ``onnxscript`` package; the TorchScript-based one needs nothing
  beyond ``onnx`` and is the faster of the two here. ``exporter="dynamo"`` works too when
  ``onnxscript`` is installed (it writes opset 18; versions checked and timings: bench/README.md,
  "Measurements moved from docstrings"). The exported file is checked with ``onnxruntime`` when
  installed.

The streaming step of a causal model (:class:`~twostep_asteroid.streaming.StreamingStep`) exports
the same ways with its state as explicit inputs and outputs (:func:`export_streaming_torchscript`,
:func:`export_streaming_onnx`, ``--streaming``), so that a runtime outside Python can stream.

The depthwise convolutions of :class:`~twostep_asteroid.layers.DilatedDepthwiseConv1d` run as
``F.conv1d`` under tracing and export, and the norms are ``group_norm``/``layer_norm`` or
elementwise ops, so the whole model exports as plain ONNX ops. Every export is checked against
eager PyTorch before it is written (:func:`~twostep_asteroid.parity.check_parity`, tolerance
:data:`~twostep_asteroid.parity.EXPORT_ATOL`).
"""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .fileio import atomic_target
from .parity import EXPORT_ATOL, check_parity
from .streaming import (STREAM_INPUTS, STREAM_OUTPUTS, StreamingStep, check_streaming_step,
                        stream_examples, trace_streaming_step)

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
        check_parity("The traced module", lambda: traced(check).numpy(), graph(check).numpy(), atol)
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
            check_parity("The ONNX model", lambda: session.run(None, {"mixture": check.numpy()})[0], ref, atol)
    return Path(path)


# ---------------------------------------------------------------------------------------------
# Streaming step (causal models): state as explicit inputs and outputs
# ---------------------------------------------------------------------------------------------
def _streaming_graph(model):
    model = _prepare(model).model
    return StreamingStep(model).eval()


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
