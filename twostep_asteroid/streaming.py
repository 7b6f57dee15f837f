"""Real-time separation with a causal :class:`~twostep_asteroid.models.TwoStepTDCN`.

A causal two-step model (``causal=True``: left-padded depthwise convolutions, per-frame ``cLN``
norms) computes each frame's masks from the frames up to it. The front end's encoder frame t reads
input samples ``[t S, t S + L)`` and the decoder writes the masked frame t back over the same
samples (overlap-add), so output sample n is final once the last frame covering it, frame
``n // S``, is complete: at input sample ``(n // S) * S + L - 1``. The algorithmic latency is
therefore the frame length L (no look-ahead is added), ``model.latency_samples``.

* :class:`StreamingStep` is one step of that computation on K new frames (``K * S`` new samples),
  as an ``nn.Module`` whose state is explicit inputs and outputs: the encoder's last ``L - S``
  input samples, the depthwise convolutions' last input frames (:meth:`TDCN.step
  <twostep_asteroid.masknn.TDCN.step>`) and the decoder's overlap-add tail of ``L - S`` samples.
  :func:`trace_streaming_step` traces it to TorchScript (checked against eager), and
  :mod:`twostep_asteroid.export` saves that trace or an ONNX export of it.
* :class:`StreamingTwoStep` holds that state for Python callers: ``push(samples)`` takes blocks of
  any size and returns the separated samples that became final, ``flush()`` the rest. Across a
  stream the output equals the offline model's output on the whole signal (within float32
  rounding, :data:`STREAM_ATOL`), whatever the block sizes.
* :func:`stream_pcm` runs a :class:`StreamingTwoStep` on raw PCM from a binary file object (stdin)
  to raw PCM outputs, block by block, with bounded memory and per-block compute times: the library
  side of ``twostep-separate --stream``.

The output order of the sources never changes within a stream: the causal model has no
permutation step at inference, its output k is always its k-th mask head, and the state carries
each head's history from one block to the next (unlike :class:`~twostep_asteroid.inference.
StreamingSeparator`, which separates overlapping chunks independently and has to re-align them).
"""
from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import torch
from torch import nn

from .inference import as_mono_block, load_model
from .parity import EXPORT_ATOL, check_parity

#: Streaming output vs the offline causal model on the whole signal: ``max |stream - offline| <=
#: STREAM_ATOL * max(1, max |offline|)``. They compute the same sums in another order (convolutions
#: over a chunk instead of the whole signal), so they differ by float32 rounding only.
STREAM_ATOL = 1e-5

PCM_FORMATS = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}

#: Names of :class:`StreamingStep`'s inputs and outputs, in order (also those of its ONNX export).
STREAM_INPUTS = ["chunk", "enc_state", "masker_state", "dec_state"]
STREAM_OUTPUTS = ["sources", "next_enc_state", "next_masker_state", "next_dec_state"]


def check_streamable(model):
    """Raise ``ValueError`` unless ``model`` is a causal TwoStepTDCN whose masker can :meth:`step`."""
    masker = getattr(model, "masker", None)
    if not getattr(model, "causal", False) or not hasattr(masker, "step"):
        raise ValueError(f"{type(model).__name__} is not a causal two-step model; streaming needs "
                         "TwoStepTDCN(causal=True, norm_type='cLN'), e.g. trained with conf/causal.yml.")
    if masker.norm_type not in ("cLN", "ChanLN"):
        raise ValueError(f"Streaming supports the per-frame norm cLN only, not {masker.norm_type!r}.")
    fb = model.encoder.filterbank
    if fb.stride > fb.kernel_size:
        raise ValueError(f"Streaming needs stride <= kernel_size (got {fb.stride} > {fb.kernel_size}).")


class StreamingStep(nn.Module):
    """One streaming step of a causal TwoStepTDCN, state in and out.

    ``forward(chunk, enc_state, masker_state, dec_state) -> (sources, enc_state, masker_state, dec_state)``

    Args:
        model: A causal :class:`~twostep_asteroid.models.TwoStepTDCN` (see :func:`check_streamable`).

    Shapes:
        * ``chunk``: ``[batch, K * S]`` new mixture samples (K >= 1 frames; S = stride).
        * ``enc_state``: ``[batch, L - S]``, the input samples just before ``chunk``. At the start of
          a stream: its first ``L - S`` samples (the first frame starts at sample 0, as offline).
        * ``masker_state``: ``[batch, masker.state_frames, hid_chan]`` (time-major), zeros at the start.
        * ``dec_state``: ``[batch, n_src, L - S]``, zeros at the start.
        * ``sources``: ``[batch, n_src, K * S]``, the separated samples of the ``K * S`` samples
          that start ``L - S`` samples before ``chunk`` (they are final: no later frame covers them).
    """

    def __init__(self, model):
        super().__init__()
        check_streamable(model)
        self.model = model
        fb = model.encoder.filterbank
        self.kernel_size, self.stride = fb.kernel_size, fb.stride
        self.context = self.kernel_size - self.stride
        self.n_src = model.n_src

    def initial_state(self, batch=1, first_samples=None, device=None):
        """``(enc_state, masker_state, dec_state)`` at the start of a stream.

        Args:
            first_samples (torch.Tensor, optional): ``[batch, L - S]``, the stream's first samples
                (default zeros, which is correct only for a stream that starts with that silence).
        """
        param = next(self.model.parameters())
        device = device or param.device
        enc = (torch.zeros(batch, self.context, device=device) if first_samples is None
               else first_samples.to(device=device, dtype=torch.float32))
        masker = self.model.masker.initial_state(batch, device=device)
        dec = torch.zeros(batch, self.n_src, self.context, device=device)
        return enc, masker, dec

    def decode(self, latents):
        """The model's decoder on K frames, ``[batch, n_latent, N, K] -> [batch, n_src, K*S + L - S]``.

        Same maths as the per-source transposed convolution: each frame's synthesis as one matrix
        product per source, then overlap-add by pieces of S samples, each piece padded by a
        constant so that a traced step takes any K. Written so because ``conv_transpose1d`` with the
        decoder's block-diagonal filters was a large share of a step on a few frames (bench/README.md,
        "Measurements moved from docstrings").
        """
        fb = self.model.decoder.filterbank
        filters = fb._filters if fb.n_groups > 1 else fb._filters.expand(latents.shape[1], -1, -1)
        frames = torch.einsum("bcnk,cnl->bckl", latents[:, : self.n_src], filters[: self.n_src])
        hop, length = self.stride, self.kernel_size
        pieces = -(-length // hop)
        batch, n_src = frames.shape[0], frames.shape[1]
        out = 0.0
        for j in range(pieces):
            piece = frames[..., j * hop : (j + 1) * hop]
            width = min(hop, length - j * hop)
            if width < hop:
                piece = torch.nn.functional.pad(piece, (0, hop - width))
            flat = piece.reshape(batch, n_src, -1)  # [batch, n_src, K*S], frame k at k*S
            out = out + torch.nn.functional.pad(flat, (j * hop, (pieces - 1 - j) * hop))
        excess = pieces * hop - length  # samples past the last frame's end
        return out[..., :-excess] if excess else out

    def forward(self, chunk, enc_state, masker_state, dec_state):
        wav = torch.cat([enc_state, chunk], dim=-1) if self.context else chunk
        tf_rep = self.model.forward_encoder(wav.unsqueeze(1))  # [batch, N, K]
        masks, masker_state = self.model.masker.step(tf_rep, masker_state)
        decoded = self.decode(self.model.apply_masks(tf_rep, masks))  # K*S + L - S samples
        if not self.context:
            return decoded, wav[..., :0], masker_state, dec_state
        # Constant slice bounds only (see DilatedDepthwiseConv1d.step): any K once traced.
        decoded = torch.cat([decoded[..., : self.context] + dec_state, decoded[..., self.context :]], dim=-1)
        return (decoded[..., : -self.context], wav[..., -self.context :], masker_state,
                decoded[..., -self.context :])


# ---------------------------------------------------------------------------------------------
# Tracing the step (TorchScript), checked against eager
# ---------------------------------------------------------------------------------------------
def stream_examples(step, frames, batch, seed):
    """Random inputs of a :class:`StreamingStep` (chunk of ``frames`` frames and the three states),
    reproducible from ``seed``: what a trace or export is made and checked on.

    Returns:
        tuple: ``(chunk [batch, frames * S], enc_state, masker_state, dec_state)``, on CPU.
    """
    gen = torch.Generator().manual_seed(seed)
    enc, masker, dec = step.initial_state(batch, device="cpu")
    chunk = torch.randn(batch, frames * step.stride, generator=gen)
    enc = torch.randn(enc.shape, generator=gen)
    masker = torch.randn(masker.shape, generator=gen)
    dec = torch.randn(dec.shape, generator=gen)
    return chunk, enc, masker, dec


def check_streaming_step(name, run, step, atol=EXPORT_ATOL, frames=7, batch=2):
    """Check a traced or exported step against the eager ``step``: on another K and batch than it
    was made with, then once more on its own output states (two steps chained).

    Args:
        name (str): What is checked, for the error message.
        run (callable): Numpy inputs (:data:`STREAM_INPUTS` order) -> the four outputs.
        step (StreamingStep): The eager reference.
        atol (float): See :func:`~twostep_asteroid.parity.check_parity`.
        frames, batch (int): K and batch of the check.

    Raises:
        RuntimeError: An output differs (see :func:`~twostep_asteroid.parity.check_parity`).
    """
    inputs = stream_examples(step, frames, batch, seed=1)
    with torch.no_grad():
        ref = step(*inputs)
        ref2 = step(inputs[0].flip(-1), *ref[1:])
    got = run([t.numpy() for t in inputs])
    got2 = run([inputs[0].flip(-1).numpy()] + [np.asarray(g) for g in got[1:]])
    for i, (g, r) in enumerate(zip(list(got) + list(got2), list(ref) + list(ref2))):
        check_parity(f"{name} ({(STREAM_OUTPUTS * 2)[i]})", lambda g=g: np.asarray(g), r.numpy(), atol)


def trace_streaming_step(step, example_frames=4, atol=EXPORT_ATOL):
    """``torch.jit.trace`` a :class:`StreamingStep` (batch 1 example, K = ``example_frames``), checked
    against eager with :func:`check_streaming_step`. :class:`StreamingTwoStep` runs it (``jit=True``);
    :mod:`twostep_asteroid.export` saves it.

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


class StreamingTwoStep:
    """Stateful real-time separator: mixture blocks of any size in, final separated samples out.

    Args:
        model: A causal TwoStepTDCN (a module, or anything
            :func:`~twostep_asteroid.inference.load_model` takes: file, folder, Hub id).
        device: Where to run; default the model's device.
        max_frames (int, optional): Most frames computed in one step (a long ``push`` is cut into
            steps of this size, so memory does not grow with the block). Default: one second.
        jit (bool): Run the step traced with TorchScript and frozen (default, on CPU): a streaming
            step is a few hundred small ops on a few frames, and the TorchScript interpreter calls
            them with less overhead than eager Python (bench/README.md, "Streaming"). The trace is
            checked against the eager step before use; ``False`` runs eager.

    Attributes:
        latency_samples (int): Algorithmic latency, L samples (see the module docstring).
        n_pushed, n_emitted (int): Samples pushed in and separated samples returned so far. Until
            :meth:`flush`, ``n_emitted = ((n_pushed - (L - S)) // S) * S`` (at least 0).

    Examples
        >>> sep = StreamingTwoStep(TwoStepTDCN.from_pretrained("causal.pth"))
        >>> for block in blocks:          # numpy float32 [n] each, any n
        ...     out = sep.push(block)      # [n_src, m]: the samples that became final
        >>> tail = sep.flush()             # [n_src, rest]: total output length = total input length
    """

    def __init__(self, model, device=None, max_frames=None, jit=True):
        if not isinstance(model, nn.Module):
            model = load_model(model, device)
        check_streamable(model)
        if device is not None:
            model = model.to(device)
        self.model = model.eval()
        self.step = StreamingStep(self.model).eval()
        self.device = next(self.model.parameters()).device
        self._step = self.step
        if jit and self.device.type == "cpu":
            self._step = torch.jit.freeze(trace_streaming_step(self.step).eval())
        self.n_src = self.model.n_src
        self.sample_rate = float(self.model.sample_rate)
        self.stride, self.context = self.step.stride, self.step.context
        self.latency_samples = self.model.latency_samples
        self.max_frames = max_frames or max(1, int(round(self.sample_rate / self.stride)))
        self.reset()

    def reset(self):
        """Start a new stream (drop all state)."""
        self._buf = np.zeros(0, dtype=np.float32)  # encoder context + samples not yet in a frame
        self._state = None
        self.n_pushed = self.n_emitted = 0
        self._finished = False

    def push(self, samples):
        """Add mixture samples (1-D numpy array or tensor, any length) and return the separated
        samples that became final, ``[n_src, m]`` float32 (``m`` may be 0)."""
        if self._finished:
            raise RuntimeError("flush() was already called; reset() starts a new stream")
        block = as_mono_block(samples)
        self.n_pushed += block.shape[0]
        self._buf = np.concatenate([self._buf, block]) if self._buf.size else block.copy()
        outs = []
        while self._buf.shape[0] >= self.context + self.stride:
            frames = min((self._buf.shape[0] - self.context) // self.stride, self.max_frames)
            outs.append(self._run(frames))
        if not outs:
            return np.zeros((self.n_src, 0), dtype=np.float32)
        return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=1)

    def _run(self, frames):
        n_new = frames * self.stride
        with torch.inference_mode():
            if self._state is None:
                first = torch.from_numpy(self._buf[None, : self.context].copy())
                self._state = self.step.initial_state(1, first_samples=first, device=self.device)
            chunk = torch.from_numpy(self._buf[None, self.context : self.context + n_new].copy()).to(self.device)
            out, *self._state = self._step(chunk, *self._state)
        self._buf = self._buf[n_new:]
        self.n_emitted += n_new
        return out[0].float().cpu().numpy()

    def flush(self):
        """End of the stream: the last separated samples, so that the whole output is exactly as
        long as the input (the decoder's overlap tail, then zeros past the last full frame, as the
        offline model pads its output)."""
        if self._finished:
            raise RuntimeError("flush() was already called; reset() starts a new stream")
        self._finished = True
        remaining = self.n_pushed - self.n_emitted
        out = np.zeros((self.n_src, remaining), dtype=np.float32)
        if self._state is not None and remaining:
            tail = self._state[2][0].float().cpu().numpy()
            n = min(remaining, tail.shape[1])
            out[:, :n] = tail[:, :n]
        self.n_emitted += remaining
        self._buf = np.zeros(0, dtype=np.float32)
        return out


# ---------------------------------------------------------------------------------------------
# Raw PCM streams (twostep-separate --stream)
# ---------------------------------------------------------------------------------------------
def decode_pcm(data, fmt):
    """Bytes of little-endian PCM -> float32 samples in [-1, 1)."""
    samples = np.frombuffer(data, dtype=PCM_FORMATS[fmt])
    return samples.astype(np.float32) / 32768.0 if fmt == "s16le" else samples.astype(np.float32)


def encode_pcm(samples, fmt):
    """float32 samples -> bytes of little-endian PCM; returns ``(bytes, n_clipped)`` (s16le clips
    to [-1, 32767/32768])."""
    if fmt == "f32le":
        return np.ascontiguousarray(samples, dtype="<f4").tobytes(), 0
    scaled = np.round(samples * 32768.0)
    clipped = int(np.count_nonzero((scaled > 32767) | (scaled < -32768)))
    return np.clip(scaled, -32768, 32767).astype("<i2").tobytes(), clipped


class _Report:
    """Per-block compute times, summarised on ``out`` every ``every_seconds`` of audio and at the end."""

    def __init__(self, sample_rate, every_seconds, out):
        self.rate, self.every, self.out = sample_rate, every_seconds, out
        self.total_samples = self.total_time = 0.0
        self.total_blocks = 0
        self.worst = 0.0
        self._reset_window()

    def _reset_window(self):
        self.w_samples, self.w_times = 0, []

    def add(self, n_samples, seconds):
        self.w_samples += n_samples
        self.w_times.append(seconds)
        self.total_samples += n_samples
        self.total_time += seconds
        self.total_blocks += 1
        self.worst = max(self.worst, seconds)
        if self.every and self.w_samples >= self.every * self.rate:
            self._print_window()

    def _print_window(self):
        if not self.w_times or self.out is None:
            return
        times = np.asarray(self.w_times) * 1e3
        audio = self.w_samples / self.rate
        print(f"[stream] {self.total_samples / self.rate:9.1f} s: {len(times)} blocks, compute per block "
              f"mean {times.mean():.2f} ms, p95 {np.percentile(times, 95):.2f} ms, max {times.max():.2f} ms; "
              f"RTF {times.sum() / 1e3 / audio:.3f}", file=self.out, flush=True)
        self._reset_window()

    def summary(self):
        audio = self.total_samples / self.rate
        rtf = self.total_time / audio if audio else float("nan")
        return {"seconds": audio, "blocks": self.total_blocks, "compute_s": self.total_time, "rtf": rtf,
                "mean_block_ms": 1e3 * self.total_time / max(1, self.total_blocks), "max_block_ms": 1e3 * self.worst}


def stream_pcm(separator, reader, writers, block_samples, in_format="s16le", out_format="s16le",
               report_seconds=10.0, report_to=sys.stderr):
    """Separate raw mono PCM read from ``reader`` into raw PCM on ``writers``, block by block.

    Memory is bounded by the block size: ``reader.read`` is called for one block at a time and each
    block's separated samples are written before the next one is read.

    Args:
        separator (StreamingTwoStep): The (fresh) stream separator.
        reader: Binary file object (``sys.stdin.buffer``): little-endian mono PCM at the model's rate.
        writers (list): One binary file object: the sources interleaved (sample 0 of s1, s2, ...,
            then sample 1...); or one per source.
        block_samples (int): Samples read (and separated) per block.
        in_format, out_format (str): ``"s16le"`` or ``"f32le"``.
        report_seconds (float): Print compute-time statistics every this many seconds of audio
            (0: only the final summary, which the caller prints).
        report_to: Text stream for those lines (``None``: silent).

    Returns:
        dict: ``seconds`` of audio, ``blocks``, ``compute_s``, ``rtf``, ``mean_block_ms``,
        ``max_block_ms``, ``clipped`` (output samples clipped to s16).
    """
    if len(writers) not in (1, separator.n_src):
        raise ValueError(f"give 1 writer (interleaved) or {separator.n_src} (one per source), got {len(writers)}")
    width = PCM_FORMATS[in_format].itemsize
    report = _Report(separator.sample_rate, report_seconds, report_to)
    clipped = 0
    leftover = b""

    def write(out):
        nonlocal clipped
        if not out.shape[1]:
            return
        if len(writers) == 1:
            data, n = encode_pcm(out.T.reshape(-1), out_format)  # interleaved
            writers[0].write(data)
        else:
            n = 0
            for writer, source in zip(writers, out):
                data, k = encode_pcm(source, out_format)
                writer.write(data)
                n += k
        clipped += n

    while True:
        data = reader.read(block_samples * width - len(leftover))
        if not data:
            break
        data = leftover + data
        usable = len(data) - len(data) % width
        data, leftover = data[:usable], data[usable:]
        block = decode_pcm(data, in_format)
        if not np.isfinite(block).all():
            raise ValueError("NaN/Inf samples in the input stream")
        start = time.perf_counter()
        out = separator.push(block)
        report.add(block.shape[0], time.perf_counter() - start)
        write(out)
        for writer in writers:
            writer.flush()
    write(separator.flush())
    for writer in writers:
        writer.flush()
    if report_seconds:
        report._print_window()
    return dict(report.summary(), clipped=clipped)
