"""Real-time figures of a causal two-step model: latency, compute per block, RTF, memory over a long stream.

    python bench/streaming_bench.py [--model causal.pth] [--block_ms 10 20 100] [--seconds 30] \\
        [--stream_minutes 60] [--stream_block_ms 100] [--json out.json]

* ``latency``: the algorithmic latency (frame length L, ``model.latency_samples``), and with the
  buffering of one block of B samples, what a live caller waits at worst: L - 1 + B samples.
* ``blocks``: :class:`~twostep_asteroid.streaming.StreamingTwoStep.push` timed per block, on 1 thread,
  for ``--seconds`` of audio per block size: mean, median, p95 and max ms per block, and the RTF
  (compute time / audio time). The model: ``--model``, else the default recipe's size made causal
  (conf/causal.yml; random weights: the cost does not depend on them).
* ``stream``: ``twostep-separate --stream`` in a subprocess (``python -m twostep_asteroid.cli``, 1 thread)
  on ``--stream_minutes`` of s16le noise generated on the fly and never stored, its output counted and
  dropped; its resident memory (VmRSS) is sampled along the stream and its peak (VmHWM) read at the end.

No quality figure here: bench/causal_vs_noncausal.sh trains both models at the same budget.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
#: conf/causal.yml's model (front end + masker), for when no trained --model is given.
CAUSAL_DEFAULT = dict(n_src=2, n_filters=128, kernel_size=40, stride=20, bn_chan=64, hid_chan=128, n_blocks=8,
                      n_repeats=2, conv_kernel_size=3, norm_type="cLN", mask_head="dense", skip_chan=0,
                      feature_norm=False, causal=True, sample_rate=8000.0)


def build(model_source):
    from twostep_asteroid import TwoStepTDCN
    from twostep_asteroid.inference import load_model

    if model_source:
        return load_model(model_source, "cpu")
    torch.manual_seed(0)
    return TwoStepTDCN(**CAUSAL_DEFAULT).eval()


def latency(model, block_samples):
    rate = float(model.sample_rate)
    lat = model.latency_samples
    return {"algorithmic_samples": lat, "algorithmic_ms": 1e3 * lat / rate,
            "with_block": {f"{1e3 * b / rate:g} ms": {"samples": lat - 1 + b, "ms": 1e3 * (lat - 1 + b) / rate}
                           for b in block_samples}}


def time_blocks(model, block_ms, seconds, jit=True, seed=0):
    """Per-block compute times of StreamingTwoStep.push for ``seconds`` of noise in blocks of ``block_ms``."""
    from twostep_asteroid.streaming import StreamingTwoStep

    rate = float(model.sample_rate)
    block = max(1, int(round(block_ms * rate / 1000)))
    sep = StreamingTwoStep(model, jit=jit)
    rng = np.random.default_rng(seed)
    n_blocks = max(1, int(seconds * rate) // block)
    for _ in range(min(20, n_blocks)):  # warm-up (first calls of the traced step are slower)
        sep.push(0.1 * rng.standard_normal(block).astype(np.float32))
    sep.reset()
    times = np.empty(n_blocks)
    cpu = 0.0
    for i in range(n_blocks):
        data = 0.1 * rng.standard_normal(block).astype(np.float32)
        start, start_cpu = time.perf_counter(), time.process_time()
        sep.push(data)
        times[i] = time.perf_counter() - start
        cpu += time.process_time() - start_cpu
    ms = 1e3 * times
    return {"block_ms": block_ms, "block_samples": block, "blocks": n_blocks, "mean_ms": float(ms.mean()),
            "median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)), "max_ms": float(ms.max()),
            "rtf": float(times.sum() / (n_blocks * block / rate)), "jit": jit,
            # CPU time of this process: what the blocks cost without the waits for a core on a busy machine.
            "cpu_mean_ms": 1e3 * cpu / n_blocks, "cpu_rtf": cpu / (n_blocks * block / rate)}


def _status_kb(pid, field):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def stream_cli(model_path, minutes, block_ms, rate, sample_every_s=60.0, seed=0):
    """Feed ``minutes`` of generated s16le noise through ``twostep-separate --stream``; memory along the way."""
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "twostep_asteroid.cli", "--stream", "--model", str(model_path),
           "--block_ms", str(block_ms), "--threads", "1", "--report_seconds", "600"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    total = int(minutes * 60 * rate)
    received = [0]
    stderr = []

    def drain():
        while True:
            data = proc.stdout.read(1 << 16)
            if not data:
                return
            received[0] += len(data)

    readers = [threading.Thread(target=drain, daemon=True),
               threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True)]
    for thread in readers:
        thread.start()
    rng = np.random.default_rng(seed)
    samples = []  # (audio seconds fed, RSS MB)
    fed, next_sample, start = 0, 0.0, time.perf_counter()
    second = int(rate)
    while fed < total:
        n = min(second, total - fed)
        block = (3000 * rng.standard_normal(n)).clip(-32768, 32767).astype("<i2")
        proc.stdin.write(block.tobytes())
        fed += n
        if fed / rate >= next_sample:
            rss = _status_kb(proc.pid, "VmRSS")
            if rss is not None:
                samples.append((fed / rate, rss / 1024))
            next_sample += sample_every_s
    peak = _status_kb(proc.pid, "VmHWM")
    proc.stdin.close()
    before = os.times()
    code = proc.wait()
    after = os.times()
    child_cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    wall = time.perf_counter() - start
    for thread in readers:
        thread.join()
    log = b"".join(stderr).decode(errors="replace").strip().splitlines()
    return {"minutes": minutes, "block_ms": block_ms, "exit_code": code, "wall_s": wall,
            "wall_rtf": wall / (total / rate), "output_samples_per_source": received[0] // 4,
            "input_samples": total, "peak_rss_mb": None if peak is None else peak / 1024,
            "rss_mb_along_stream": samples, "child_cpu_s": child_cpu, "cpu_rtf": child_cpu / (total / rate),
            "summary": log[-1] if log else ""}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a causal model (best_model.pth, folder, Hub id); default: conf/causal.yml's "
                                        "size with random weights")
    parser.add_argument("--block_ms", type=float, nargs="+", default=[10.0, 20.0, 100.0])
    parser.add_argument("--seconds", type=float, default=30.0, help="audio timed per block size")
    parser.add_argument("--stream_minutes", type=float, default=60.0, help="0: skip the CLI stream")
    parser.add_argument("--stream_block_ms", type=float, default=100.0)
    parser.add_argument("--eager", action="store_true", help="also time the eager (non-traced) step")
    parser.add_argument("--json", help="write the report here too")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = build(args.model)
    rate = float(model.sample_rate)
    report = {"model": args.model or "conf/causal.yml size, random weights",
              "masker_params": sum(p.numel() for p in model.masker.parameters()),
              "latency": latency(model, [int(round(b * rate / 1000)) for b in args.block_ms]),
              "blocks": [], "load_avg_start": os.getloadavg()}
    for block_ms in args.block_ms:
        for jit in ([True, False] if args.eager else [True]):
            result = time_blocks(model, block_ms, args.seconds, jit=jit)
            report["blocks"].append(result)
            print(f"block {block_ms:g} ms ({'jit' if jit else 'eager'}): mean {result['mean_ms']:.2f} ms, median "
                  f"{result['median_ms']:.2f}, p95 {result['p95_ms']:.2f}, max {result['max_ms']:.2f}; "
                  f"RTF {result['rtf']:.3f}; CPU time {result['cpu_mean_ms']:.2f} ms per block, CPU RTF "
                  f"{result['cpu_rtf']:.3f}", flush=True)
    if args.stream_minutes:
        with tempfile.TemporaryDirectory() as tmp:
            from twostep_asteroid.serialization import save_pretrained

            path = args.model if args.model else save_pretrained(model, Path(tmp) / "causal")
            report["stream"] = stream_cli(path, args.stream_minutes, args.stream_block_ms, rate)
        s = report["stream"]
        print(f"stream {s['minutes']:g} min in {s['block_ms']:g} ms blocks: exit {s['exit_code']}, wall "
              f"{s['wall_s']:.0f} s (RTF {s['wall_rtf']:.3f}; CPU {s['child_cpu_s']:.0f} s, CPU RTF {s['cpu_rtf']:.3f}), peak RSS {s['peak_rss_mb']:.0f} MB; RSS along the "
              f"stream (s, MB): {[(round(a), round(b)) for a, b in s['rss_mb_along_stream']]}", flush=True)
        print(f"  {s['summary']}")
    report["load_avg_end"] = os.getloadavg()
    print(json.dumps(report["latency"]))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
