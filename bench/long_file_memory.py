"""Memory and time of separating a long file with bounded-memory chunked inference.

Generates an N-minute mixture (default 10 min at 8 kHz: two amplitude-modulated harmonic sources
with gliding pitch, plus a little noise) written to disk in blocks, then separates it with
:func:`twostep_asteroid.inference.separate_file` using the paper's configuration
``TwoStepTDCN(n_src=2, n_filters=256, kernel_size=21, bn_chan=256, hid_chan=512, n_blocks=8,
n_repeats=4)`` (untrained weights: memory and time do not depend on them) on CPU, and prints JSON:

* ``peak_rss_mb``: the process's peak resident memory (``getrusage`` ``ru_maxrss``), imports included;
* ``rss_before_mb``: resident memory just before separating (model built, file not read);
* ``peak_rss_during_mb``: peak resident memory during separation (``VmHWM`` after resetting it
  through ``/proc/self/clear_refs``; Linux), and ``rss_trace_mb``: RSS sampled along the file, to
  show it stays flat;
* ``wall_s`` and ``rtf`` (wall time / audio duration) of the separation.

Usage::

    python bench/long_file_memory.py                     # 10 min, chunks of 10 s, hop 8 s
    python bench/long_file_memory.py --minutes 1 --json out.json
    python bench/long_file_memory.py --minutes 1 --model egs/wsj0-2mix/twostep/exp/default_prompts/step2/best_model.pth
"""
import argparse
import json
import math
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PAPER = dict(n_src=2, n_filters=256, kernel_size=21, bn_chan=256, hid_chan=512, n_blocks=8, n_repeats=4)
SMALL = dict(n_src=2, n_filters=32, kernel_size=16, bn_chan=16, hid_chan=24, n_blocks=3, n_repeats=2)


def _proc_status_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss():
    """Reset VmHWM (Linux >= 4.0); returns whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _mb(kb):
    return None if kb is None else round(kb / 1024, 1)


def write_mixture(path, minutes, rate, seed=0, block_seconds=10.0):
    """Write a mono float32 WAV of two gliding harmonic sources + noise, block by block."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    total = int(round(minutes * 60 * rate))
    block = int(block_seconds * rate)
    phases = np.zeros(2)
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=1, format="WAV", subtype="FLOAT") as f:
        for start in range(0, total, block):
            n = min(block, total - start)
            t = (start + np.arange(n)) / rate
            mix = np.zeros(n)
            for i, (f0, depth, rate_mod) in enumerate(((130.0, 30.0, 0.07), (420.0, 80.0, 0.05))):
                freq = f0 + depth * np.sin(2 * math.pi * rate_mod * t + i)
                phase = phases[i] + 2 * math.pi * np.cumsum(freq) / rate
                phases[i] = phase[-1]
                env = 0.6 + 0.4 * np.sin(2 * math.pi * (1.3 + i) * t)
                mix += sum(np.sin(h * phase) / h for h in range(1, 5)) * env * 0.15
            mix += 0.01 * rng.standard_normal(n)
            f.write(mix.astype(np.float32))
    return total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sample_rate", type=int, default=8000)
    parser.add_argument("--chunk_seconds", type=float, default=10.0)
    parser.add_argument("--hop_seconds", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: on the shared 2-core machine, 2 threads "
                             "were slower under load)")
    parser.add_argument("--config", choices=("paper", "small"), default="paper")
    parser.add_argument("--model", help="a trained model (best_model.pth, folder or Hub id) instead of --config")
    parser.add_argument("--workdir", help="where the input and outputs go (default: a temp folder, removed)")
    parser.add_argument("--json", help="also write the JSON report here")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from twostep_asteroid import TwoStepTDCN
    from twostep_asteroid.inference import separate_file

    tmp = None
    workdir = Path(args.workdir) if args.workdir else Path(tmp := tempfile.mkdtemp(prefix="twostep_bench_"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        mix_path = workdir / "long_mixture.wav"
        t0 = time.perf_counter()
        frames = write_mixture(mix_path, args.minutes, args.sample_rate)
        gen_s = time.perf_counter() - t0

        torch.manual_seed(0)
        if args.model:
            model = TwoStepTDCN.from_pretrained(args.model).eval()
        else:
            model = TwoStepTDCN(**(PAPER if args.config == "paper" else SMALL), sample_rate=float(args.sample_rate)).eval()
        n_params = sum(p.numel() for p in model.parameters())

        rss_before = _proc_status_kb("VmRSS")
        hwm_reset = _reset_peak_rss()
        trace, stop = [], threading.Event()

        def sample():
            start = time.perf_counter()
            while not stop.is_set():
                trace.append((round(time.perf_counter() - start, 1), _mb(_proc_status_kb("VmRSS"))))
                stop.wait(2.0)

        sampler = threading.Thread(target=sample, daemon=True)
        load_before = os.getloadavg()
        sampler.start()
        t0 = time.perf_counter()
        info = separate_file(model, mix_path, workdir / "out", chunk_seconds=args.chunk_seconds,
                             hop_seconds=args.hop_seconds, device="cpu", notify=lambda m: None)
        wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
        load_after = os.getloadavg()
        peak_during = _proc_status_kb("VmHWM") if hwm_reset else None
        duration = frames / args.sample_rate
        # Keep ~20 evenly spaced samples of the RSS trace.
        step = max(1, len(trace) // 20)
        report = {
            "config": args.config,
            "model_args": model.get_model_args() if args.model else PAPER if args.config == "paper" else SMALL,
            "n_params": n_params,
            "minutes": args.minutes,
            "sample_rate": args.sample_rate,
            "frames": frames,
            "input_file_mb": round(mix_path.stat().st_size / 2**20, 1),
            "chunk_seconds": args.chunk_seconds,
            "hop_seconds": args.hop_seconds,
            "n_chunks": info["n_chunks"],
            "threads": args.threads,
            "peak_rss_mb": _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
            "rss_before_mb": _mb(rss_before),
            "peak_rss_during_mb": _mb(peak_during),
            "rss_trace_mb": trace[::step],
            "wall_s": round(wall, 1),
            "rtf": round(wall / duration, 4),
            "generate_s": round(gen_s, 1),
            "outputs_frames": [int(__import__("soundfile").info(p).frames) for p in info["outputs"]],
            "loadavg_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        }
    finally:
        if tmp:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
