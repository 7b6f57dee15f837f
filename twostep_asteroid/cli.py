"""``twostep-separate``: separate audio files with a TwoStep (or any Asteroid) model.

Usage::

    twostep-separate mix.wav recordings/ "more/*.flac" --model org/name --out_dir separated/

    sox mix.wav -t raw -r 8000 -e signed -b 16 -c 1 - | \
        twostep-separate --stream --model causal/ | sox -t raw -r 8000 -e signed -b 16 -c 2 - out.wav

Writes ``<out_dir>/<name>_s1.wav``, ``<name>_s2.wav``... (32-bit float WAV at the input's rate, as
long as the input); with ``--report``, also ``report.html`` (players and spectrograms). With
``--stream`` (a causal model only) it reads raw mono PCM from stdin instead (s16le by default, at the
model's sample rate: no header, no resampling) and writes the sources as raw PCM, interleaved on
stdout or one file per source (``--stream_out``), block by block with bounded memory, as many
samples out as in, with compute-time statistics on stderr. Long files are separated in overlapping
chunks with bounded memory, inputs at another rate are resampled to the model's and back,
multi-channel inputs are downmixed (each with a notice). Unreadable files are skipped and listed at
the end; the exit status is then 1.
Exit status 2: bad arguments, no input found, or the model cannot be loaded.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc",
                    ".au", ".snd", ".caf", ".w64", ".rf64", ".sph", ".nist", ".wv1", ".wv2")
_GLOB_CHARS = set("*?[")


class InputError(ValueError):
    """An input argument that names nothing to separate."""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="twostep-separate",
        description="Separate the sources of audio mixtures with a two-step (TwoStepTDCN) model.",
        epilog="Exit status: 0 all files separated, 1 some files failed (listed), 2 usage error.",
    )
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="audio files, folders (their audio files) or glob patterns (quote them); "
                             "none with --stream")
    parser.add_argument("--model", required=True,
                        help="local folder (config.json + model.safetensors) or .pth/.safetensors file, "
                             "Hub id org/name[@revision], or https://huggingface.co/org/name URL")
    parser.add_argument("--out_dir", default="separated",
                        help="output folder (default: ./separated); files are <name>_s1.wav, <name>_s2.wav...")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1... (default: auto = cuda if available)")
    parser.add_argument("--chunk_seconds", type=float, default=10.0,
                        help="separate in chunks of this length, for long files with bounded memory "
                             "(default 10; 0 = whole file at once)")
    parser.add_argument("--hop_seconds", type=float, default=None,
                        help="hop between chunks (default: 3/4 of --chunk_seconds); the overlap is "
                             "cross-faded and used to keep the sources in the same order")
    parser.add_argument("--no_resample", action="store_true",
                        help="do not resample inputs to the model's sample rate (and back)")
    parser.add_argument("-r", "--recursive", action="store_true", help="look into sub-folders of folder inputs")
    parser.add_argument("--subtype", default="FLOAT",
                        help="soundfile subtype of the outputs (default FLOAT: no clipping; e.g. PCM_16)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's choice, 1 with --stream; 1 is often faster on busy machines)")
    parser.add_argument("--report", nargs="?", const="", default=None, metavar="DIR",
                        help="also write an HTML page with players and spectrograms of each input and its "
                             "separated sources: DIR/report.html (without DIR: in --out_dir)")
    parser.add_argument("--system_malloc", action="store_true",
                        help="on CPU, keep the C library's default allocator, which returns each large "
                             "buffer to the OS at once (less resident memory, much slower on long chunks; "
                             "default: freed memory is kept for reuse, see bench/README.md)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    stream = parser.add_argument_group("real-time streaming (causal models)")
    stream.add_argument("--stream", action="store_true",
                        help="read raw mono PCM from stdin at the model's rate and write the separated "
                             "sources as raw PCM as they come (needs a causal model, conf/causal.yml)")
    stream.add_argument("--block_ms", type=float, default=20.0,
                        help="stdin block length in ms (default 20); output follows each block")
    stream.add_argument("--in_format", choices=("s16le", "f32le"), default="s16le",
                        help="input sample format (default s16le)")
    stream.add_argument("--out_format", choices=("s16le", "f32le"), default="s16le",
                        help="output sample format (default s16le; clipped samples are counted)")
    stream.add_argument("--stream_out", default="-",
                        help="'-' (default): sources interleaved on stdout (sample 0 of s1, s2..., then "
                             "sample 1...); a path with {src} (e.g. out_s{src}.raw): one raw file per "
                             "source; any other path: one interleaved file")
    stream.add_argument("--rate", type=float, default=None,
                        help="sample rate of the input; must equal the model's (no resampling here: "
                             "use sox); default: the model's")
    stream.add_argument("--report_seconds", type=float, default=10.0,
                        help="print per-block compute times every this many seconds of audio (0: only "
                             "the final summary)")
    return parser


def stream_main(args, parser):
    """``--stream``: stdin PCM -> separated PCM (see :func:`twostep_asteroid.streaming.stream_pcm`)."""
    import torch

    from .inference import load_model, resolve_device
    from .serialization import UnsafeCheckpointError
    from .sources import HubModelNotCachedError
    from .streaming import StreamingTwoStep, stream_pcm

    if args.inputs:
        parser.error("--stream reads stdin; give no INPUT files")
    if args.block_ms <= 0:
        parser.error("--block_ms must be > 0")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    torch.set_num_threads(args.threads or 1)
    try:
        device = resolve_device(args.device)
        separator = StreamingTwoStep(load_model(args.model, device))
    except (HubModelNotCachedError, UnsafeCheckpointError, FileNotFoundError, ValueError, RuntimeError, OSError) as err:
        print(f"twostep-separate: error: cannot stream with model {args.model!r}: {err}", file=sys.stderr)
        return 2
    rate = separator.sample_rate
    if args.rate is not None and abs(args.rate - rate) > 1e-6:
        print(f"twostep-separate: error: the input is at {args.rate:g} Hz but the model expects {rate:g} Hz; "
              f"resample first (e.g. sox ... -r {rate:g} ...)", file=sys.stderr)
        return 2
    block = max(1, int(round(args.block_ms * rate / 1000)))
    latency = separator.latency_samples
    print(f"[stream] {args.model}: {separator.n_src} sources, {rate:g} Hz {args.in_format} in, "
          f"{args.out_format} out; blocks of {block} samples ({1000 * block / rate:g} ms); algorithmic "
          f"latency {latency} samples ({1000 * latency / rate:g} ms) + one block", file=sys.stderr)
    files = []
    try:
        if args.stream_out == "-":
            writers = [sys.stdout.buffer]
        elif "{src}" in args.stream_out:
            files = [open(args.stream_out.format(src=i + 1), "wb") for i in range(separator.n_src)]
            writers = files
        else:
            files = [open(args.stream_out, "wb")]
            writers = files
        result = stream_pcm(separator, sys.stdin.buffer, writers, block, args.in_format, args.out_format,
                            report_seconds=0 if args.quiet else args.report_seconds)
    except ValueError as err:
        print(f"twostep-separate: error: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1
    finally:
        for f in files:
            f.close()
    print(f"[stream] done: {result['seconds']:.2f} s of audio in {result['blocks']} blocks, compute "
          f"{result['compute_s']:.2f} s (RTF {result['rtf']:.3f}), mean {result['mean_block_ms']:.2f} ms, "
          f"max {result['max_block_ms']:.2f} ms per block"
          + (f"; {result['clipped']} output samples clipped to s16" if result["clipped"] else ""),
          file=sys.stderr)
    return 0


def _scan_folder(folder, recursive, out_dir):
    folder = Path(folder)
    pattern = "**/*" if recursive else "*"
    out_dir = Path(out_dir).resolve()
    found = []
    for path in sorted(folder.glob(pattern)):
        if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith("."):
            if path.resolve().parent == out_dir or out_dir in path.resolve().parents:
                continue  # our own outputs, from a previous run
            found.append((path, path.parent.relative_to(folder)))
    return found


def collect_inputs(inputs, recursive=False, out_dir="separated"):
    """Expand files, folders and globs into ``[(path, relative output subfolder)]``.

    Raises:
        InputError: listing every input that names no audio file (missing path, empty folder,
            glob without match).
    """
    items, problems = [], []
    for arg in inputs:
        if os.path.isdir(arg):
            found = _scan_folder(arg, recursive, out_dir)
            if not found:
                problems.append(f"no audio files in folder {arg} (looked for {', '.join(AUDIO_EXTENSIONS[:6])}..."
                                f"{'' if recursive else '; use --recursive for sub-folders'})")
            items.extend(found)
        elif os.path.isfile(arg):
            items.append((Path(arg), Path(".")))
        elif _GLOB_CHARS & set(arg):
            matches = [Path(p) for p in sorted(glob.glob(arg, recursive=True)) if os.path.isfile(p)]
            if not matches:
                problems.append(f"no file matches {arg}")
            items.extend((p, Path(".")) for p in matches)
        else:
            problems.append(f"no such file or folder: {arg}")
    if problems:
        raise InputError("; ".join(problems))
    seen, unique = set(), []
    for path, sub in items:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((path, sub))
    return unique


def _describe(model, device):
    name = type(model).__name__
    n_src = getattr(model, "n_src", "?")
    rate = getattr(model, "sample_rate", None)
    rate = f"{float(rate):g} Hz" if rate else "unknown rate"
    return f"{name}, {n_src} sources, {rate}, on {device}"


def separate_main(argv=None):
    """Entry point of ``twostep-separate``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.stream:
        return stream_main(args, parser)
    if not args.inputs:
        parser.error("give at least one INPUT (or --stream to read PCM from stdin)")
    if args.chunk_seconds < 0:
        parser.error("--chunk_seconds must be >= 0")
    if args.hop_seconds is not None and args.chunk_seconds and not 0 < args.hop_seconds <= args.chunk_seconds:
        parser.error("--hop_seconds must be in (0, --chunk_seconds]")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    if args.report and os.path.isfile(args.report):
        parser.error(f"--report takes a folder, and {args.report} is a file: write --report=DIR, or put "
                     "--report after the inputs")
    import soundfile as sf

    args.subtype = args.subtype.upper()
    if not sf.check_format("WAV", args.subtype):
        parser.error(f"--subtype {args.subtype} cannot be written to WAV; try one of "
                     f"{', '.join(sorted(sf.available_subtypes('WAV')))}")

    def say(message):
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)

    try:
        files = collect_inputs(args.inputs, args.recursive, args.out_dir)
    except InputError as err:
        print(f"twostep-separate: error: {err}", file=sys.stderr)
        return 2

    import torch
    from tqdm import tqdm

    from .cpu_allocator import retain_freed_memory
    from .data.audio_io import AudioError
    from .fileio import DiskFullError
    from .inference import load_model, output_paths, resolve_device, separate_file
    from .serialization import UnsafeCheckpointError
    from .sources import HubModelNotCachedError

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"--device {args.device}: CUDA is not available here; use --device cpu")
        if device.type == "cpu" and not args.system_malloc:
            retain_freed_memory()
        model = load_model(args.model, device)
    except (HubModelNotCachedError, UnsafeCheckpointError, FileNotFoundError, ValueError, RuntimeError, OSError) as err:
        print(f"twostep-separate: error: cannot load model {args.model!r}: {err}", file=sys.stderr)
        return 2
    say(f"Model {args.model} ({_describe(model, device)}); {len(files)} file(s) -> {args.out_dir}")

    out_root = Path(args.out_dir)
    n_src = getattr(model, "n_src", None)
    claimed = {}
    failed, done, separated = [], 0, []
    bar = tqdm(files, unit="file", disable=args.quiet, file=sys.stderr, dynamic_ncols=True)
    for path, sub in bar:
        bar.set_postfix_str(path.name, refresh=False)
        try:
            out_paths = None
            if n_src:
                out_paths = output_paths(path, out_root / sub, n_src)
                owner = claimed.get(out_paths[0].resolve())
                if owner is not None:
                    raise RuntimeError(f"its outputs {out_paths[0].name}... would overwrite those of {owner}; "
                                       "separate it in another run with another --out_dir")
                claimed[out_paths[0].resolve()] = path
            result = separate_file(model, path, out_paths=out_paths, out_dir=out_root / sub,
                                   chunk_seconds=args.chunk_seconds or None, hop_seconds=args.hop_seconds,
                                   resample=not args.no_resample, device=device, subtype=args.subtype, notify=say)
            separated.append({**result, "input": str(path)})
            done += 1
        except KeyboardInterrupt:
            say("Interrupted: the file in progress was not written.")
            raise
        except DiskFullError as err:  # every later file would fail the same way: stop here
            say(f"Stopped: {err}")
            say(f"Separated {done}/{len(files)} file(s) into {out_root}/ before the disk filled up; "
                "free some space and run the command again.")
            return 1
        except Exception as err:  # unreadable or unusable input: skip it, report at the end
            reason = str(err) if isinstance(err, AudioError) else f"{type(err).__name__}: {err}"
            failed.append((path, reason))
            say(f"Skipped {path}: {reason}")
    bar.close()
    say(f"Separated {done}/{len(files)} file(s) into {out_root}/")
    if args.report is not None:
        from .report import separation_report

        page = separation_report(args.report or out_root, separated, title=f"Separated with {args.model}",
                                 subtitle=_describe(model, device))
        say(f"Report (open in a browser): {page}")
    if failed:
        say(f"{len(failed)} file(s) failed:")
        for path, reason in failed:
            say(f"  {path}: {reason}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(separate_main())
