"""Inference on arrays and audio files of any length, with bounded memory.

:class:`StreamingSeparator` cuts the mixture into chunks of ``chunk_size`` samples every
``hop_size`` samples, separates each chunk, aligns its sources with what was already separated
(the source order of a permutation-invariant separator is arbitrary per chunk) and cross-fades the
overlap. Mixture samples are pushed in blocks of any size and separated samples come out as soon as
no later chunk can change them, so memory depends on the chunk size, not on the file length.

:func:`separate_file` streams a file through it: blocks are read with ``soundfile``, downmixed to
mono, resampled to the model's rate and back with ``soxr``'s streaming resampler (a librosa
dependency), and each source is written to its own file as it comes, into temporary files that
:func:`~twostep_asteroid.fileio.atomic_target` moves into place once all are complete.

Why not :class:`asteroid.dsp.overlap_add.LambdaOverlapAdd`: it ``unfold``s the whole input at once
(a copy of the mixture per overlap, plus zero padding of one window at each end that is separated
too), keeps every separated chunk until the final ``fold``, and so needs the whole input and several
copies of the output in memory; it cannot take a stream. Its reordering idea is kept here: each
chunk's sources are permuted to best match the overlap, here against the cross-faded output of all
previous chunks, by mean-removed normalised correlation (a scale-invariant proxy of SI-SDR) and an
optimal assignment, instead of a raw correlation with the previous chunk only.

Chunking changes the result a little, even with alignment: the separator's global layer norm
(gLN) normalises over the chunk rather than over the whole file, and each chunk sees less context.
Chunks of several receptive fields (the paper's TDCN sees about 2.5 s at 8 kHz) keep that small.
"""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np
import torch

from .data.audio_io import AudioError
from .fileio import atomic_target

DEFAULT_CHUNK_SECONDS = 10.0
DEFAULT_OVERLAP = 0.25  # default hop = (1 - DEFAULT_OVERLAP) * chunk


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------
def resolve_device(device=None):
    """``None``/``"auto"`` -> CUDA when available, else CPU; anything else -> ``torch.device``."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_model(source, device=None):
    """Load a separation model for inference (eval mode, on ``device``).

    Args:
        source: An ``nn.Module`` (returned as is, moved to ``device``), or anything
            :func:`twostep_asteroid.sources.load_model_conf` takes: a serialized dict, a local
            ``.pth``/``.safetensors`` file or folder, a Hub id ``org/name[@revision]`` or a
            ``https://huggingface.co/...`` URL. The class is looked up in Asteroid's model registry
            by the stored ``model_name``, so other Asteroid models load too (safely).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"auto"``/``None`` (CUDA if available).

    Returns:
        torch.nn.Module: The model, in eval mode.
    """
    device = resolve_device(device)
    if isinstance(source, torch.nn.Module):
        return source.eval().to(device)
    import asteroid.models

    from . import models  # noqa: F401  (registers TwoStepTDCN with asteroid.models)
    from .sources import load_model_conf

    conf = load_model_conf(source)
    try:
        cls = asteroid.models.get(conf["model_name"])
    except ValueError as err:
        raise ValueError(f"Unknown model class {conf['model_name']!r} in {source!r}: {err}") from err
    return cls.from_pretrained(conf).eval().to(device)


def model_frame_geometry(model):
    """``(kernel_size, stride)`` of the model's analysis frames, ``(1, 1)`` when unknown.

    Read from an Asteroid encoder (``model.encoder.filterbank``)."""
    fb = getattr(getattr(model, "encoder", None), "filterbank", None)
    kernel, stride = getattr(fb, "kernel_size", None), getattr(fb, "stride", None)
    if isinstance(kernel, int) and isinstance(stride, int) and kernel >= 1 and stride >= 1:
        return kernel, stride
    return 1, 1


def model_sample_rate(model):
    rate = getattr(model, "sample_rate", None)
    return None if rate is None else float(rate)


def as_mono_block(samples):
    """A block of mixture samples pushed to a stream separator (1-D numpy array or tensor, any
    length) as a float32 numpy array.

    Raises:
        ValueError: ``samples`` is not 1-D (a separator takes mono blocks).
    """
    block = np.asarray(samples.detach().cpu() if torch.is_tensor(samples) else samples, dtype=np.float32)
    if block.ndim != 1:
        raise ValueError(f"push() takes mono 1-D blocks, got shape {block.shape}")
    return block


# ---------------------------------------------------------------------------------------------
# Permutation alignment
# ---------------------------------------------------------------------------------------------
def best_permutation(reference, estimate, eps=1e-8):
    """Order of ``estimate``'s sources that best matches ``reference``'s.

    Args:
        reference (np.ndarray): ``[n_src, n]``.
        estimate (np.ndarray): ``[n_src, n]``.

    Returns:
        np.ndarray: ``perm`` such that ``estimate[perm]`` is aligned with ``reference``: the
        assignment maximising the summed normalised correlation of mean-removed signals. With
        silent references (no information) the identity is returned.
    """
    from scipy.optimize import linear_sum_assignment

    ref = reference - reference.mean(-1, keepdims=True)
    est = estimate - estimate.mean(-1, keepdims=True)
    ref_norm = np.linalg.norm(ref, axis=-1)
    est_norm = np.linalg.norm(est, axis=-1)
    if not np.any(ref_norm > eps) or not np.any(est_norm > eps):
        return np.arange(estimate.shape[0])
    score = (ref @ est.T) / (ref_norm[:, None] * est_norm[None, :] + eps)
    _, perm = linear_sum_assignment(score.astype(np.float64), maximize=True)
    return perm


# ---------------------------------------------------------------------------------------------
# Streaming overlap-add
# ---------------------------------------------------------------------------------------------
class StreamingSeparator:
    """Chunked separation of a stream, with permutation alignment and cross-faded overlap-add.

    Push mixture blocks with :meth:`push`, then call :meth:`flush` once at the end of the stream;
    both return a list of separated blocks ``[n_src, n]`` (float32), in order, whose lengths add
    up to the number of samples pushed.

    Chunk ``k`` covers samples ``[k * hop, k * hop + chunk)``. Its sources are permuted to match the
    output already accumulated on the overlap (see :func:`best_permutation`) and added with linear
    cross-fades over the ``chunk - hop`` overlapping samples (complementary ramps that add up to 1),
    then divided by the summed window, which makes any ``hop <= chunk`` exact for a model that is the
    identity. The last chunk is shifted back to end at the last sample so that it keeps a full chunk
    of context. Memory: about two chunks of input and one chunk of output, whatever the length.

    Chunks start on the model's frame grid (multiples of the encoder stride, counted from the first
    sample) and span whole frames (``chunk = kernel + k * stride``), so that every chunk frames the
    signal exactly as a whole-file pass does: a strided learned filterbank is not shift-invariant, and
    an off-grid chunk would give a different (if valid) result. ``chunk_size`` is rounded up and
    ``hop_size`` to the nearest multiple of the stride accordingly.

    Args:
        model (torch.nn.Module): Maps ``[1, time]`` to ``[1, n_src, time]``.
        chunk_size (int, optional): Chunk length in samples. ``None``: no chunking, the whole stream
            is buffered and separated at once at :meth:`flush` (memory grows with the length).
        hop_size (int, optional): Hop in samples, ``<= chunk_size``. Defaults to 3/4 of the chunk.
            The overlap ``chunk_size - hop_size`` is what permutations are aligned on: keep it at
            0.5 s or more.
        device: Where to run the model (default: the model's device).
        align (bool): Align source permutations between chunks (default). ``False`` only for models
            whose output order is fixed.
    """

    def __init__(self, model, chunk_size=None, hop_size=None, device=None, align=True):
        kernel, stride = model_frame_geometry(model)
        self.stride = stride
        if chunk_size is not None:
            chunk_size = int(chunk_size)
            if chunk_size < 2:
                raise ValueError(f"chunk_size must be >= 2 samples, got {chunk_size}")
            hop_size = int(hop_size) if hop_size is not None else max(1, int(round(chunk_size * (1 - DEFAULT_OVERLAP))))
            if not 1 <= hop_size <= chunk_size:
                raise ValueError(f"hop_size must be in [1, chunk_size={chunk_size}], got {hop_size}")
            chunk_size = max(chunk_size, kernel, stride)
            chunk_size = kernel + stride * -(-(chunk_size - kernel) // stride)  # whole frames
            hop_size = min(max(stride, stride * int(round(hop_size / stride))), chunk_size // stride * stride)
        if align and chunk_size is not None and chunk_size - hop_size < chunk_size // 8:
            import warnings

            warnings.warn(f"An overlap of {chunk_size - hop_size} samples (chunk {chunk_size}, hop {hop_size}) "
                          "is short to align the sources' order between chunks: use a hop of at most "
                          "about 3/4 of the chunk.", stacklevel=2)
        self.model = model
        self.chunk_size = chunk_size
        self.hop_size = hop_size
        self.overlap = 0 if chunk_size is None else chunk_size - hop_size
        if device is None:
            param = next(iter(model.parameters()), None)
            device = param.device if param is not None else torch.device("cpu")
        self.device = torch.device(device)
        self.align = align
        self.n_chunks = 0
        self.n_pushed = 0
        self.n_emitted = 0
        self._parts = []  # pushed blocks not yet consolidated into self._buf
        self._buf = np.zeros(0, dtype=np.float32)  # input from the first sample not emitted yet
        self._hist = np.zeros(0, dtype=np.float32)  # input just before self._buf (left context)
        self._acc = None  # [n_src, p]: weighted sum of chunk outputs over the pending samples
        self._wsum = None  # [p]: summed weights
        self._finished = False

    # -- model ------------------------------------------------------------------------------
    def _separate(self, chunk):
        with torch.inference_mode():
            wav = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)).to(self.device)
            est = self.model(wav.unsqueeze(0))
        if est.ndim != 3 or est.shape[0] != 1 or est.shape[-1] != chunk.shape[-1]:
            raise RuntimeError(f"The model returned {tuple(est.shape)} for a [1, {chunk.shape[-1]}] input; "
                               f"expected [1, n_src, {chunk.shape[-1]}].")
        return est[0].float().cpu().numpy()

    # -- overlap-add --------------------------------------------------------------------------
    def _add(self, est, final):
        """Add one chunk's separated sources (starting at the first pending sample) and return
        the samples that no later chunk can change."""
        n_src, length = est.shape
        pending = 0 if self._acc is None else self._acc.shape[1]
        fade_in = min(pending, length)
        if self.align and fade_in > 0 and n_src > 1:
            reference = self._acc[:, :fade_in] / self._wsum[:fade_in]
            est = est[best_permutation(reference, est[:, :fade_in])]
        weight = np.ones(length, dtype=np.float32)
        if fade_in:
            weight[:fade_in] = (np.arange(fade_in, dtype=np.float32) + 0.5) / fade_in
        fade_out = 0 if final else min(self.overlap, length)
        if fade_out:
            ramp = (np.arange(fade_out, dtype=np.float32) + 0.5) / fade_out
            weight[length - fade_out:] = np.minimum(weight[length - fade_out:], ramp[::-1])
        acc = np.zeros((n_src, max(length, pending)), dtype=np.float32)
        wsum = np.zeros(acc.shape[1], dtype=np.float32)
        if pending:
            acc[:, :pending] = self._acc
            wsum[:pending] = self._wsum
        acc[:, :length] += est * weight
        wsum[:length] += weight
        n_out = acc.shape[1] if final else max(length - self.overlap, 0)
        out = acc[:, :n_out] / wsum[:n_out]
        self._acc, self._wsum = acc[:, n_out:], wsum[n_out:]
        self.n_chunks += 1
        return out

    def _consume(self, n):
        """Drop ``n`` emitted samples from the input buffer, keeping them as left context."""
        if self.chunk_size is not None and n:
            keep = self.chunk_size + self.stride
            self._hist = np.concatenate([self._hist, self._buf[:n]])[-keep:]
        self._buf = self._buf[n:]
        self.n_emitted += n

    def _gather(self):
        if self._parts:
            self._buf = np.concatenate([self._buf, *self._parts])
            self._parts = []

    def push(self, block):
        """Add mixture samples (1-D array or tensor) and return the separated blocks now final."""
        if self._finished:
            raise RuntimeError("flush() was already called on this StreamingSeparator")
        block = as_mono_block(block)
        self.n_pushed += block.shape[0]
        self._parts.append(block)
        if self.chunk_size is None:
            return []
        if len(self._buf) + sum(len(p) for p in self._parts) < self.chunk_size:
            return []
        self._gather()
        outputs = []
        while len(self._buf) >= self.chunk_size:
            out = self._add(self._separate(self._buf[: self.chunk_size]), final=False)
            self._consume(out.shape[1])
            outputs.append(out)
        return outputs

    def flush(self):
        """End of the stream: separate what is left and return the last separated blocks."""
        if self._finished:
            raise RuntimeError("flush() was already called on this StreamingSeparator")
        self._finished = True
        self._gather()
        remaining = len(self._buf)
        if remaining == 0:
            return []
        pending = 0 if self._acc is None else self._acc.shape[1]
        if self.n_chunks and remaining <= pending:  # already covered by the previous chunk
            out = self._acc[:, :remaining] / self._wsum[:remaining]
        elif self.n_chunks == 0:  # shorter than one chunk (or no chunking): one pass
            out = self._add(self._separate(self._buf), final=True)
        else:  # last chunk, shifted back to end at the last sample for a full chunk of context
            total = self.n_emitted + remaining
            start = (total - self.chunk_size) // self.stride * self.stride  # on the frame grid
            context = self._hist[len(self._hist) - (self.n_emitted - start):]
            est = self._separate(np.concatenate([context, self._buf]))[:, len(context):]
            out = self._add(est, final=True)
        self._consume(remaining)
        self._acc = self._wsum = None
        return [out]


def separate_array(model, wav, chunk_size=None, hop_size=None, device=None, align=True):
    """Separate a mono mixture held in memory, chunk by chunk.

    Args:
        model: Separation model ``[1, time] -> [1, n_src, time]``.
        wav (np.ndarray or torch.Tensor): Mixture ``[time]``.
        chunk_size, hop_size, device, align: See :class:`StreamingSeparator`.

    Returns:
        np.ndarray: ``[n_src, time]``, float32.
    """
    wav = wav.detach().cpu().numpy() if torch.is_tensor(wav) else np.asarray(wav)
    if wav.ndim != 1:
        raise ValueError(f"separate_array takes a mono [time] mixture, got shape {wav.shape}")
    sep = StreamingSeparator(model, chunk_size, hop_size, device=device, align=align)
    block = sep.hop_size or len(wav) or 1
    out, pos = None, 0
    for start in range(0, len(wav), block):
        for part in sep.push(wav[start : start + block]):
            out, pos = _place(out, part, pos, len(wav))
    for part in sep.flush():
        out, pos = _place(out, part, pos, len(wav))
    assert pos == len(wav), (pos, len(wav))
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def _place(out, part, pos, total):
    if out is None:
        out = np.empty((part.shape[0], total), dtype=np.float32)
    out[:, pos : pos + part.shape[1]] = part
    return out, pos + part.shape[1]


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------
def output_paths(in_path, out_dir, n_src, ext=".wav"):
    """``<out_dir>/<name>_s1.wav``, ``<name>_s2.wav``... for ``in_path``."""
    in_path = Path(in_path)
    out_dir = Path(out_dir) if out_dir is not None else in_path.parent
    return [out_dir / f"{in_path.stem}_s{i + 1}{ext}" for i in range(n_src)]


def _default_notify(message):
    print(message, file=sys.stderr)


def _read_mono_blocks(reader, in_path, block, down=None):
    """The input file's samples as mono float32 blocks (channel mean), resampled by ``down`` (a
    ``soxr.ResampleStream``, whose tail ends the stream) when given.

    Raises:
        AudioError: NaN/Inf samples, which would spread through every later chunk (norms,
            convolutions): nothing is written then.
    """
    read = 0
    for data in reader.blocks(blocksize=block, dtype="float32", always_2d=True):
        bad = ~np.isfinite(data).all(axis=1)
        if bad.any():
            raise AudioError(
                f"{in_path}: {int(bad.sum())} NaN/Inf sample(s) from sample "
                f"{read + int(np.flatnonzero(bad)[0])} on; nothing written. Repair or re-export the file.")
        read += len(data)
        mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
        yield mono if down is None else down.resample_chunk(np.ascontiguousarray(mono))
    if down is not None:
        yield down.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


def _close_quietly(writer):
    """Close a ``soundfile`` writer on the way out of an error (a full disk can fail the close too;
    its temporary file is removed anyway)."""
    if not writer.closed:
        try:
            writer.close()
        except Exception:
            pass


class _SourceFiles:
    """The separated sources of one input file, written as they come, one WAV file per source.

    The files are opened on the first separated block, when the number of sources is known, as
    temporary files of :func:`~twostep_asteroid.fileio.atomic_target` entered on ``stack``: all of
    them replace their final paths when ``stack`` closes cleanly, and all are removed on an error (a
    full disk then raises :class:`~twostep_asteroid.fileio.DiskFullError` naming the first output).
    Blocks come at the working rate and are resampled back to the file's rate (``soxr``'s
    streaming resampler) and cut to the input's length; :meth:`finish` writes the resampler's tail
    and pads the few samples its rounding may leave out, so that every output is exactly as long as
    the input.

    Args:
        stack (contextlib.ExitStack): Holds the atomic targets and the open files.
        paths_for (callable): ``n_src -> [output path per source]``.
        rate (int): The input file's sample rate, that of the outputs.
        work_rate (int): The rate the separated blocks come at (``rate`` when not resampled).
        frames (int): The input's length in frames.
        subtype (str): ``soundfile`` subtype of the outputs.
    """

    def __init__(self, stack, paths_for, rate, work_rate, frames, subtype):
        self._stack, self._paths_for = stack, paths_for
        self.rate, self.work_rate, self.frames, self.subtype = rate, work_rate, frames, subtype
        self.paths = None  # the final paths, once the files are open
        self.written = 0  # frames written to each file, at the file's rate
        self._writers = []
        self._up = None

    def _open(self, n_src):
        import soundfile as sf

        paths = [Path(p) for p in self._paths_for(n_src)]
        if len(paths) != n_src:
            raise ValueError(f"{len(paths)} output paths given for {n_src} sources")
        # Entered last to first: the target entered last sees an error first, so a full disk is
        # reported on the first output, and the outputs are committed in order.
        advice = "Nothing was written for this file."
        tmps = [self._stack.enter_context(atomic_target(path, advice)) for path in reversed(paths)][::-1]
        for tmp in tmps:
            writer = sf.SoundFile(str(tmp), "w", samplerate=self.rate, channels=1, format="WAV", subtype=self.subtype)
            self._stack.callback(_close_quietly, writer)  # runs before the targets' cleanup
            self._writers.append(writer)
        if self.work_rate != self.rate:
            import soxr

            self._up = soxr.ResampleStream(self.work_rate, self.rate, n_src, dtype="float32")
        self.paths = paths

    def write(self, part):
        """Write separated samples ``[n_src, n]`` (at the working rate)."""
        if self.paths is None:
            self._open(part.shape[0])
        if self._up is not None:
            part = self._up.resample_chunk(np.ascontiguousarray(part.T)).T
        self._write_at_file_rate(part)

    def _write_at_file_rate(self, part):
        n = min(part.shape[1], self.frames - self.written)
        for writer, source in zip(self._writers, part[:, :n]):
            writer.write(source)
        self.written += n

    def finish(self):
        """The resampler's tail, then zeros up to the input's length (resampler rounding: at most a
        few samples), then close the files; they are committed when the stack closes."""
        n_src = len(self.paths)
        if self._up is not None:
            self._write_at_file_rate(self._up.resample_chunk(np.zeros((0, n_src), dtype=np.float32), last=True).T)
        if self.written < self.frames:
            self._write_at_file_rate(np.zeros((n_src, self.frames - self.written), dtype=np.float32))
        for writer in self._writers:
            writer.close()


def separate_file(model, in_path, out_dir=None, *, out_paths=None, chunk_seconds=DEFAULT_CHUNK_SECONDS,
                  hop_seconds=None, resample=True, device=None, subtype="FLOAT", block_seconds=None,
                  align=True, notify=_default_notify):
    """Separate an audio file into one file per source, streaming, with bounded memory.

    The input is read in blocks (never whole), downmixed to mono when it has several channels,
    resampled to the model's rate (and the sources back to the file's rate) unless
    ``resample=False``, separated by :class:`StreamingSeparator`, and the sources are written as
    they come to temporary files that replace ``out_paths`` only once complete. Each output has
    exactly as many frames as the input, at the input's sample rate.

    Args:
        model: Separation model with ``sample_rate`` (see :func:`load_model`).
        in_path (str or Path): Any file ``soundfile`` reads (wav, flac, ogg, mp3...).
        out_dir (str or Path, optional): Where ``<name>_s1.wav``... go; default beside the input.
        out_paths (list, optional): Explicit output paths, one per source (overrides ``out_dir``).
        chunk_seconds (float, optional): Chunk length; ``None`` or ``0`` separates the whole file
            at once (memory grows with the length).
        hop_seconds (float, optional): Hop between chunks; default 3/4 of ``chunk_seconds``.
        resample (bool): Resample to the model's rate and back (default). ``False`` separates at the
            file's own rate, with a notice when it differs from the model's.
        device: See :func:`resolve_device`; default: the model's device.
        subtype (str): ``soundfile`` subtype of the outputs; ``"FLOAT"`` (default) never clips.
        block_seconds (float, optional): Read block length (default: one hop, or 1 s).
        align (bool): See :class:`StreamingSeparator`.
        notify (callable): Receives the notices (downmix, resampling); default: print to stderr.

    Returns:
        dict: ``outputs`` (paths), ``sample_rate``, ``model_sample_rate``, ``processing_rate``,
        ``channels``, ``frames``, ``resampled``, ``downmixed``, ``n_chunks``.

    Raises:
        AudioError: The file cannot be read as audio, is empty or holds NaN/Inf samples (nothing is
            written).
        ~twostep_asteroid.fileio.DiskFullError: The disk filled up (nothing is written).
    """
    import soundfile as sf

    in_path = Path(in_path)
    try:
        reader = sf.SoundFile(str(in_path))
    except Exception as err:  # soundfile.LibsndfileError, or a TypeError for odd formats
        raise AudioError(f"cannot read {in_path} as audio: {err}") from err
    with reader, contextlib.ExitStack() as stack:
        rate, channels, frames = reader.samplerate, reader.channels, reader.frames
        if frames <= 0:
            raise AudioError(f"{in_path} holds no audio samples")
        model_rate = model_sample_rate(model)
        resampled = bool(resample and model_rate and int(round(model_rate)) != rate)
        work_rate = int(round(model_rate)) if resampled else rate
        if channels > 1:
            notify(f"{in_path}: {channels} channels, downmixed to mono (channel mean) before separation.")
        if resampled:
            notify(f"{in_path}: resampled {rate} Hz -> {work_rate} Hz for the model, sources written back at {rate} Hz.")
        elif model_rate and int(round(model_rate)) != rate:
            notify(f"{in_path}: separated at {rate} Hz without resampling (--no_resample), "
                   f"although the model expects {int(round(model_rate))} Hz; expect worse results.")
        chunk = int(round(chunk_seconds * work_rate)) if chunk_seconds else None
        hop = int(round(hop_seconds * work_rate)) if (chunk and hop_seconds) else None
        sep = StreamingSeparator(model, chunk, hop, device=device, align=align)
        if block_seconds:
            block = max(1, int(round(block_seconds * rate)))
        elif sep.hop_size:
            block = max(1, int(round(sep.hop_size * rate / work_rate)))
        else:
            block = rate
        down = None
        if resampled:
            import soxr

            down = soxr.ResampleStream(rate, work_rate, 1, dtype="float32")

        def paths_for(n_src):
            return [Path(p) for p in out_paths] if out_paths is not None else output_paths(in_path, out_dir, n_src)

        files = _SourceFiles(stack, paths_for, rate, work_rate, frames, subtype)
        for mono in _read_mono_blocks(reader, in_path, block, down):
            for part in sep.push(mono):
                files.write(part)
        parts = sep.flush()
        if files.paths is None and not parts:
            raise AudioError(f"{in_path}: nothing to separate")
        for part in parts:
            files.write(part)
        files.finish()
    return {
        "outputs": [str(p) for p in files.paths],
        "sample_rate": rate,
        "model_sample_rate": model_rate,
        "processing_rate": work_rate,
        "channels": channels,
        "frames": frames,
        "resampled": resampled,
        "downmixed": channels > 1,
        "n_chunks": sep.n_chunks,
    }
