#!/usr/bin/env python
"""Speed and memory benchmark: our TwoStepTDCN against the port's architecture and ConvTasNet.

One command::

    python bench/run_bench.py [--device cpu|cuda] [--quick] [--out bench/results/NAME.jsonl]

Three models, measured side by side in one process (their timed repeats are interleaved, so
that load from other processes hits them alike; each figure is the minimum over the repeats):

* ``ours``: :class:`twostep_asteroid.TwoStepTDCN` at the paper configuration (N=256, L=21, B=256,
  H=512, P=3, X=8, R=4), step 2 with the paper's latent loss (:class:`TwoStepLoss`), targets from
  the frozen front end computed once per step without grad (as :class:`SeparatorSystem` does);
* ``port``: ``bench/port_baseline.py``, the architecture of Asteroid's public recipe;
* ``convtasnet``: ``asteroid.models.ConvTasNet(n_src=2)`` with its defaults, PIT SI-SDR on waveforms.

Tasks: step-1 training step (front end only; n/a for ConvTasNet), step-2 training step
(forward + backward + Adam step) at batch 4 and 16 x 4 s at 8 kHz, inference RTF on 10 s and 60 s
mixtures (batch 1, ``torch.inference_mode``), and micro-benchmarks of the kernels we chose between
(depthwise conv "conv" vs "shift" per dilation, Toeplitz vs Conv2d mask head, fused vs Asteroid gLN,
cost of the latent targets).

Peak memory, reported as the transient peak of one step over the memory held before it (model,
optimizer state and inputs excluded):

* CUDA: ``torch.cuda.max_memory_allocated()`` after ``reset_peak_memory_stats()``, minus
  ``torch.cuda.memory_allocated()`` before the step;
* CPU: a fresh subprocess per case (with ``MALLOC_MMAP_THRESHOLD_=1048576``, so that tensors are
  mmapped and given back when freed) builds the model and inputs, resets the kernel's peak-RSS
  mark (``/proc/self/clear_refs``), runs the steps and reports the peak RSS (``VmHWM``) minus the
  RSS before them (``ru_maxrss`` from ``resource.getrusage`` where the reset is unavailable).
  In-process RSS deltas are not reliable for torch: glibc keeps freed memory.

CPU timings run under glibc's default allocator unless ``--malloc retain`` keeps freed memory in
the heap (:mod:`twostep_asteroid.cpu_allocator`; the ``meta`` record says which).

Output: JSON lines (a ``meta`` record first), and a markdown table on stdout with the ratios
ours / port and ours / ConvTasNet. ``--table FILE...`` re-prints the tables of saved results.
"""
import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from twostep_asteroid.cpu_allocator import release_free_memory, retain_freed_memory  # noqa: E402

MODELS = ("ours", "port", "convtasnet")
# Variants of ours, each undoing one speed-up (``--ablations``), plus torch.compile (``--compile``).
ABLATIONS = ("ours_asteroid_gln", "ours_conv2d_head", "ours_dw_conv", "ours_dw_shift", "ours_torch_prelu",
             "ours_frames_unaligned")

# Model sizes. "paper": the paper's configuration; "tiny": for the smoke test only.
CONFIGS = {
    "paper": {
        "twostep": dict(n_filters=256, kernel_size=21, bn_chan=256, hid_chan=512, conv_kernel_size=3,
                        n_blocks=8, n_repeats=4),
        "convtasnet": dict(),  # asteroid's defaults
    },
    "tiny": {
        "twostep": dict(n_filters=16, kernel_size=21, bn_chan=8, hid_chan=16, conv_kernel_size=3,
                        n_blocks=3, n_repeats=2),
        "convtasnet": dict(n_filters=16, bn_chan=8, hid_chan=16, skip_chan=8, n_blocks=2, n_repeats=2),
    },
}

# Run sizes: batches and seconds of the cases, warm-up and timed repeats. "quick" has no warm-up
# call: on CPU the first of its 2 repeats is the cold one and the minimum takes the second.
SIZES = {
    "full": dict(config="paper", sr=8000, seg_s=4.0, step1_batches=(4, 16), step2_batches=(4, 16),
                 infer_s=(10.0, 60.0), warmup=2, repeats=5, micro_repeats=5, mem_steps=2),
    "quick": dict(config="paper", sr=8000, seg_s=4.0, step1_batches=(4,), step2_batches=(4,),
                  infer_s=(10.0,), warmup=0, repeats=2, micro_repeats=3, mem_steps=1),
    "tiny": dict(config="tiny", sr=8000, seg_s=0.1, step1_batches=(2,), step2_batches=(2,),
                 infer_s=(0.2,), warmup=0, repeats=1, micro_repeats=1, mem_steps=1),
}
CUDA_WARMUP = 3
CUDA_REPEATS = 10


# --------------------------------------------------------------------------------------------
# Models and steps
# --------------------------------------------------------------------------------------------

def _count(model, trainable_only=True):
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def swap_modules(model, kind, make_reference):
    """Replace every ``kind`` submodule by ``make_reference(child)``, loading the child's state dict."""
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is kind:  # this class only, not its subclasses
                ref = make_reference(child).to(next(child.parameters()).device)
                ref.load_state_dict(child.state_dict())
                setattr(module, child_name, ref)
    return model


def swap_in_asteroid_gln(model):
    """Replace our fused :class:`GlobalLayerNorm` by Asteroid's ``GlobLN`` (same parameters)."""
    from asteroid.masknn.norms import GlobLN

    from twostep_asteroid.layers import FusedGlobLN as GlobalLayerNorm

    return swap_modules(model, GlobalLayerNorm, lambda child: GlobLN(child.channel_size))


def swap_in_torch_prelu(model):
    """Replace our :class:`~twostep_asteroid.masknn.PReLU` by ``nn.PReLU`` (same parameter)."""
    from twostep_asteroid.layers import FastPReLU as PReLU

    return swap_modules(model, PReLU, lambda child: torch.nn.PReLU(child.num_parameters))


class Conv2dMaskHead(nn.Module):
    """The port's ``Conv2d(1, C, (N + 1, 1))`` mask head, for the ablation of ours."""

    def __init__(self, toeplitz_head):
        super().__init__()
        n, c = toeplitz_head.n_feats, toeplitz_head.n_src
        width = 2 * (n // 2) + 1
        self.conv = nn.Conv2d(1, c, (width, 1), padding=(n // 2, 0))
        with torch.no_grad():
            self.conv.weight.copy_(toeplitz_head.weight.reshape(self.conv.weight.shape))
            self.conv.bias.copy_(toeplitz_head.bias)

    def forward(self, x):
        return self.conv(x.unsqueeze(1))


def build_model(name, config, n_src=2):
    """Build one benchmarked model (step 2 / inference)."""
    cfg = CONFIGS[config]
    if name.startswith("ours"):
        from twostep_asteroid.models import TwoStepTDCN

        conv_impl = {"ours_dw_conv": "conv", "ours_dw_shift": "shift"}.get(name, "auto")
        model = TwoStepTDCN(n_src=n_src, conv_impl=conv_impl, **cfg["twostep"])
        if name == "ours_asteroid_gln":
            swap_in_asteroid_gln(model)
        if name == "ours_torch_prelu":
            swap_in_torch_prelu(model)
        if name == "ours_conv2d_head":
            model.masker.head[1] = Conv2dMaskHead(model.masker.head[1])
        if name == "ours_compiled":
            model.masker = torch.compile(model.masker)
        return model
    if name == "port":
        from bench.port_baseline import PortTwoStepTDCN

        return PortTwoStepTDCN(n_src=n_src, **cfg["twostep"])
    if name == "convtasnet":
        from asteroid.models import ConvTasNet

        return ConvTasNet(n_src=n_src, **cfg["convtasnet"])
    raise ValueError(f"unknown model {name!r}")


def build_front_end(name, config, n_src=2):
    """Build one step-1 model (front end only)."""
    tw = CONFIGS[config]["twostep"]
    if name.startswith("ours"):
        from twostep_asteroid.models import TwoStepFrontEnd

        return TwoStepFrontEnd(n_src, tw["n_filters"], tw["kernel_size"])
    if name == "port":
        from bench.port_baseline import PortFrontEnd

        return PortFrontEnd(tw["n_filters"], tw["kernel_size"], n_src)
    raise ValueError(f"no step-1 model for {name!r}")


class frames_unaligned:
    """Undo the frame alignment of CPU inference (``layers.FRAME_ALIGN``) inside the block."""

    def __enter__(self):
        from twostep_asteroid import layers

        self.saved, layers.FRAME_ALIGN = layers.FRAME_ALIGN, 1

    def __exit__(self, *exc):
        from twostep_asteroid import layers

        layers.FRAME_ALIGN = self.saved


def _autocast(device, prec):
    if prec == "fp32":
        return nullcontext()
    return torch.autocast(device_type=device, dtype=torch.bfloat16)


def make_case(task, name, config, device, prec, batch, seconds, sr, seed=0):
    """Return ``(run, model, info)``: ``run()`` executes one step of the case."""
    gen = torch.Generator().manual_seed(seed)
    n_src = 2
    time_len = int(round(seconds * sr))
    torch.manual_seed(seed)
    if task == "step1":
        model = build_front_end(name, config, n_src).to(device).train()
    else:
        model = build_model(name, config, n_src).to(device)
    info = {"params": _count(model), "params_total": _count(model, trainable_only=False)}

    if task == "infer":
        model.eval()
        wav = torch.randn(1, time_len, generator=gen).to(device)

        align = frames_unaligned() if name == "ours_frames_unaligned" else nullcontext()

        def run():
            with torch.inference_mode(), _autocast(device, prec), align:
                return model(wav)

        return run, model, info

    sources = torch.randn(batch, n_src, time_len, generator=gen).to(device)
    mixture = sources.sum(1)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)
    model.train()

    if task == "step1":
        if name.startswith("ours"):
            from twostep_asteroid.losses import front_end_loss

            def loss_fn():
                out = model(mixture, sources)
                return front_end_loss(out["estimates"], model.training_sources(mixture, sources))
        else:
            from bench.port_baseline import port_step1_loss

            def loss_fn():
                return port_step1_loss(model, mixture, sources)
    elif task == "step2":
        if name.startswith("ours"):
            from twostep_asteroid.losses import TwoStepLoss

            criterion = TwoStepLoss(latent_weight=1.0, waveform_weight=0.0)  # the paper's loss

            def loss_fn():
                with torch.no_grad():  # once per batch, without grad (as SeparatorSystem does)
                    targets = model.front_end.ideal_latents(mixture, sources)[2]
                est, _ = model.estimate_latents(mixture)
                return criterion(est, targets)["loss"]
        elif name == "port":
            from bench.port_baseline import port_step2_loss

            def loss_fn():
                return port_step2_loss(model, mixture, sources)
        else:
            from asteroid.losses import PITLossWrapper, pairwise_neg_sisdr

            pit = PITLossWrapper(pairwise_neg_sisdr, pit_from="pw_mtx")

            def loss_fn():
                return pit(model(mixture), sources)
    elif task == "targets":
        # Cost of the step-2 latent targets alone (no grad), to set against the step.
        def run():
            with torch.no_grad(), _autocast(device, prec):
                return model.front_end.ideal_latents(mixture, sources)[2]

        return run, model, info
    else:
        raise ValueError(task)

    def run():
        with _autocast(device, prec):
            loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return run, model, info


# --------------------------------------------------------------------------------------------
# Timing and memory
# --------------------------------------------------------------------------------------------

def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(run, device):
    _sync(device)
    start = time.perf_counter()
    run()
    _sync(device)
    elapsed = time.perf_counter() - start
    if device == "cpu":
        # With three models' steps interleaved, glibc kept each step's freed buffers and the
        # process grew to about 19 GB at batch 4 x 4 s, enough to push a shared 24 GB machine
        # into reclaim. Trimming (outside the timer) bounds the process to one step's peak; each
        # step then faults its pages in again, as a first step does, for every model alike.
        gc.collect()
        release_free_memory()
    return elapsed


def time_interleaved(runs, device, warmup, repeats):
    """Time several callables, interleaving their repeats. Returns ``{key: [seconds...]}`` and
    the first warm-up call's time per key (which includes ``torch.compile`` time)."""
    first = {}
    for key, run in runs.items():
        for i in range(warmup):
            t = _timed(run, device)
            if i == 0:
                first[key] = t
    times = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            times[key].append(_timed(run, device))
    return times, first


def cuda_peak_delta_mib(run):
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    run()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def _maxrss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _proc_status_mib(field):
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def _reset_peak_rss():
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def child_memory(spec):
    """Runs in a fresh process: peak RSS of ``spec['steps']`` steps of one case over the RSS
    just before them. The peak is VmHWM after resetting it (``/proc/self/clear_refs``) right
    before the steps, so that the import-time peak does not mask the step's; where that reset is
    unavailable, ``ru_maxrss`` (which then includes the imports)."""
    torch.set_num_threads(spec["threads"])
    run, _, _ = make_case(spec["task"], spec["model"], spec["config"], "cpu", spec["prec"],
                          spec["batch"], spec["seconds"], spec["sr"])
    gc.collect()
    before = _proc_status_mib("VmRSS")
    reset = _reset_peak_rss() and before is not None
    before_max = _maxrss_mib()
    for _ in range(spec["steps"]):
        run()
    if reset:
        peak = _proc_status_mib("VmHWM")
        method = "VmHWM after reset"
    else:
        before, peak, method = before_max, _maxrss_mib(), "ru_maxrss"
    return {"rss_before_mib": before, "peak_rss_mib": peak, "peak_delta_mib": peak - before,
            "rss_peak_source": method}


def cpu_peak_delta_mib(spec, timeout):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_child", json.dumps(spec)]
    # Allocations over 1 MiB straight from mmap, given back on free: the RSS then follows the live
    # tensors (as CUDA's allocated bytes do) rather than glibc's retention, which added 40-120 %
    # here and differed between models (see bench/README.md).
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(2**20))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT),
                              env=env)
    except subprocess.TimeoutExpired:
        return {"mem_error": f"timeout after {timeout}s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"mem_error": f"rc={proc.returncode}: {proc.stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


# --------------------------------------------------------------------------------------------
# Micro-benchmarks of the kernels
# --------------------------------------------------------------------------------------------

def micro_benchmarks(device, size, config, repeats, emit, precs=("fp32",)):
    from asteroid.masknn.norms import GlobLN

    from twostep_asteroid.layers import DilatedDepthwiseConv1d, ToeplitzMaskHead
    from twostep_asteroid.layers import FusedGlobLN as GlobalLayerNorm

    tw = CONFIGS[config]["twostep"]
    hop = tw["kernel_size"] // 2
    frames_train = int(size["seg_s"] * size["sr"]) // hop
    frames_infer = int(max(size["infer_s"]) * size["sr"]) // hop
    batch = size["step2_batches"][0]
    hid, n = tw["hid_chan"], tw["n_filters"]
    warm = 1

    def fwd_bwd(module, x):
        def run():
            y = module(x)
            y.backward(torch.ones_like(y))
        return run

    def fwd(module, x):
        def run():
            with torch.inference_mode():
                module(x)
        return run

    for prec in precs:
        # Depthwise conv: "conv" (F.conv1d) vs "shift" (sum of shifted slices), per dilation.
        x_tr = torch.randn(batch, hid, frames_train, device=device, requires_grad=True)
        x_in = torch.randn(1, hid, frames_infer, device=device)
        for exp in range(tw["n_blocks"]):
            d = 2**exp
            mods = {}
            for impl in ("conv", "shift"):
                torch.manual_seed(0)
                mods[impl] = DilatedDepthwiseConv1d(hid, tw["conv_kernel_size"], d, impl=impl).to(device)
            for mode, x, maker in (("train", x_tr, fwd_bwd), ("infer", x_in, fwd)):
                runs = {impl: _in_ctx(device, prec, maker(m, x)) for impl, m in mods.items()}
                times, _ = time_interleaved(runs, device, warm, repeats)
                for impl, ts in times.items():
                    emit({"task": "micro_depthwise", "impl": impl, "dilation": d, "mode": mode,
                          "prec": prec, "shape": list(x.shape), "ms": 1000 * min(ts),
                          "times": ts})
        # Mask head: our Toeplitz matmul vs the port's Conv2d over [B, 1, N, T].
        torch.manual_seed(0)
        toe = ToeplitzMaskHead(n, 2).to(device)
        c2d = Conv2dMaskHead(toe).to(device)
        h_tr = torch.randn(batch, n, frames_train, device=device, requires_grad=True)
        h_in = torch.randn(1, n, frames_infer, device=device)
        for mode, x, maker in (("train", h_tr, fwd_bwd), ("infer", h_in, fwd)):
            runs = {"toeplitz": _in_ctx(device, prec, maker(toe, x)), "conv2d": _in_ctx(device, prec, maker(c2d, x))}
            times, _ = time_interleaved(runs, device, warm, repeats)
            for impl, ts in times.items():
                emit({"task": "micro_head", "impl": impl, "mode": mode, "prec": prec,
                      "shape": list(x.shape), "ms": 1000 * min(ts), "times": ts})
        # gLN: fused group_norm vs Asteroid's GlobLN.
        fused = GlobalLayerNorm(hid).to(device)
        ref = GlobLN(hid).to(device)
        runs = {"fused_group_norm": _in_ctx(device, prec, fwd_bwd(fused, x_tr)),
                "asteroid_globln": _in_ctx(device, prec, fwd_bwd(ref, x_tr))}
        times, _ = time_interleaved(runs, device, warm, repeats)
        for impl, ts in times.items():
            emit({"task": "micro_norm", "impl": impl, "mode": "train", "prec": prec,
                  "shape": list(x_tr.shape), "ms": 1000 * min(ts), "times": ts})
        del x_tr, x_in, h_tr, h_in


def _in_ctx(device, prec, run):
    def wrapped():
        with _autocast(device, prec):
            run()
    return wrapped


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

def run_group(task, names, args, size, prec, batch, seconds, emit, warmup, repeats):
    """Build the cases of one (task, precision, batch, seconds), time them interleaved, then
    measure their memory; emit one record per model."""
    device = args.device
    runs, infos, built = {}, {}, {}
    for name in names:
        try:
            run, model, info = make_case(task, name, size["config"], device, prec, batch, seconds,
                                         size["sr"])
        except Exception as exc:  # keep going: one failing case must not sink the others
            emit({"task": task, "model": name, "prec": prec, "batch": batch, "seconds": seconds,
                  "device": device, "error": f"build: {type(exc).__name__}: {exc}"})
            continue
        runs[name], infos[name], built[name] = run, info, model
    if not runs:
        return
    try:
        times, first = time_interleaved(runs, device, warmup, repeats)
    except Exception as exc:
        for name in runs:
            emit({"task": task, "model": name, "prec": prec, "batch": batch, "seconds": seconds,
                  "device": device, "error": f"run: {type(exc).__name__}: {exc}"})
        return
    for name, ts in times.items():
        best = min(ts)
        rec = {"task": task, "model": name, "prec": prec, "batch": batch, "seconds": seconds,
               "device": device, **infos[name], "step_s": best, "times": ts,
               "warmup": warmup, "repeats": repeats}
        if name in first:
            rec["first_call_s"] = first[name]
        if task == "infer":
            rec["rtf"] = best / seconds
        else:
            rec["audio_s_per_s"] = batch * seconds / best
        if args.mem != "none" and task != "targets":
            if device == "cuda":
                try:
                    rec["peak_delta_mib"] = cuda_peak_delta_mib(runs[name])
                    rec["mem_method"] = "cuda max_memory_allocated - memory_allocated before the step"
                except Exception as exc:
                    rec["mem_error"] = f"{type(exc).__name__}: {exc}"
            elif name != "ours_compiled":
                spec = {"task": task, "model": name, "config": size["config"], "prec": prec,
                        "batch": batch, "seconds": seconds, "sr": size["sr"],
                        "steps": size["mem_steps"], "threads": torch.get_num_threads()}
                rec.update(cpu_peak_delta_mib(spec, args.mem_timeout))
                rec["mem_method"] = ("peak RSS (VmHWM) growth over %d step(s) in a fresh subprocess "
                                     "with MALLOC_MMAP_THRESHOLD_=1MiB" % size["mem_steps"])
        emit(rec)
    del runs, built
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   choices=("cpu", "cuda"))
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats (CPU: minutes)")
    p.add_argument("--tiny", action="store_true", help="tiny models and inputs (smoke test only)")
    p.add_argument("--out", help="JSON-lines output (default bench/results/<device>[_quick].jsonl)")
    p.add_argument("--precisions", help="comma list of fp32,bf16 (default: fp32 on CPU, both on CUDA)")
    p.add_argument("--tasks", default="step1,step2,targets,infer,micro",
                   help="comma list of step1,step2,targets,infer,micro")
    p.add_argument("--models", default=",".join(MODELS), help="comma list of " + ",".join(MODELS))
    p.add_argument("--ablations", action="store_true",
                   help="also time variants of ours that undo one speed-up each: " + ",".join(ABLATIONS))
    p.add_argument("--compile", action="store_true", help="also time ours with torch.compile(masker)")
    p.add_argument("--step2-batches", help="override, e.g. 4,16")
    p.add_argument("--step1-batches", help="override, e.g. 4,16")
    p.add_argument("--infer-seconds", help="override, e.g. 10,60")
    p.add_argument("--seg-seconds", type=float, help="override the training segment length (4 s)")
    p.add_argument("--warmup", type=int)
    p.add_argument("--repeats", type=int)
    p.add_argument("--mem", default="auto", choices=("auto", "none"),
                   help="peak memory (auto: CUDA allocator stats / CPU subprocess ru_maxrss)")
    p.add_argument("--mem-timeout", type=int, default=600, help="seconds per CPU memory subprocess")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    p.add_argument("--malloc", default="system", choices=("system", "retain"),
                   help="CPU allocator of the timed runs: glibc's default (system), or freed memory "
                        "kept in the heap (retain, as twostep-separate does; see bench/README.md, "
                        "'Page faults on long inputs')")
    p.add_argument("--table", nargs="+", metavar="FILE", help="only print the tables of saved results")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args._child:
        print(json.dumps(child_memory(json.loads(args._child))), flush=True)
        return 0
    if args.table:
        records = []
        for path in args.table:
            records.extend(load_records(path))
        print(format_tables(records))
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.malloc == "retain" and not retain_freed_memory():
        raise SystemExit("--malloc retain: needs glibc's mallopt, which this C library lacks")

    size = dict(SIZES["tiny" if args.tiny else "quick" if args.quick else "full"])
    if args.device == "cuda" and not args.tiny:
        size.update(warmup=CUDA_WARMUP, repeats=CUDA_REPEATS)
    for key, opt in (("step2_batches", args.step2_batches), ("step1_batches", args.step1_batches),
                     ("infer_s", args.infer_seconds)):
        if opt:
            size[key] = tuple(float(v) if key == "infer_s" else int(v) for v in opt.split(","))
    if args.seg_seconds:
        size["seg_s"] = args.seg_seconds
    if args.warmup is not None:
        size["warmup"] = args.warmup
    if args.repeats is not None:
        size["repeats"] = size["micro_repeats"] = args.repeats
    precs = (args.precisions.split(",") if args.precisions
             else ["fp32", "bf16"] if args.device == "cuda" else ["fp32"])
    tasks = args.tasks.split(",")
    names = [m for m in args.models.split(",") if m]
    ours_variants = []
    if args.ablations:
        ours_variants += list(ABLATIONS)
    if args.compile:
        ours_variants.append("ours_compiled")

    out = Path(args.out) if args.out else (
        ROOT / "bench" / "results" / f"{args.device}{'_tiny' if args.tiny else '_quick' if args.quick else ''}.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    records = []
    fh = open(out, "w")

    def emit(rec):
        records.append(rec)
        fh.write(json.dumps(rec) + "\n")
        fh.flush()
        brief = {k: v for k, v in rec.items() if k != "times"}
        print("#", json.dumps(brief), flush=True)

    meta = {"torch": torch.__version__, "device": args.device, "threads": torch.get_num_threads(),
            "malloc": args.malloc,
            "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "machine": platform.machine(), "size": "tiny" if args.tiny else "quick" if args.quick else "full",
            "config": size, "argv": sys.argv[1:] if argv is None else list(argv),
            "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    if args.device == "cuda":
        meta["gpu"] = torch.cuda.get_device_name(0)
    try:
        import asteroid

        meta["asteroid"] = asteroid.__version__
    except ImportError:
        pass
    emit({"meta": meta})
    start = time.perf_counter()

    for prec in precs:
        if "step1" in tasks:
            step1_names = [n for n in names if n != "convtasnet"]
            for batch in size["step1_batches"]:
                run_group("step1", step1_names, args, size, prec, batch, size["seg_s"], emit,
                          size["warmup"], size["repeats"])
        if "step2" in tasks:
            for batch in size["step2_batches"]:
                run_group("step2", names + ours_variants, args, size, prec, batch, size["seg_s"],
                          emit, size["warmup"], size["repeats"])
        if "targets" in tasks and "ours" in names:
            run_group("targets", ["ours"], args, size, prec, size["step2_batches"][0], size["seg_s"],
                      emit, size["warmup"], size["repeats"])
        if "infer" in tasks:
            for seconds in size["infer_s"]:
                run_group("infer", names + ours_variants, args, size, prec, 1, seconds, emit,
                          size["warmup"], size["repeats"])
    if "micro" in tasks:
        micro_benchmarks(args.device, size, size["config"], size["micro_repeats"], emit, precs)
    emit({"meta_end": {"wall_s": time.perf_counter() - start,
                       "loadavg_end": os.getloadavg() if hasattr(os, "getloadavg") else None}})
    fh.close()
    print()
    print(format_tables(records))
    print(f"\nresults: {out}")
    return 0


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

def load_records(path):
    text = Path(path).read_text().strip()
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _fmt(v, digits=3):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def _ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def format_tables(records):
    metas = [r["meta"] for r in records if "meta" in r]
    cases = [r for r in records if "task" in r and "model" in r]
    lines = []
    for m in metas:
        lines.append(f"<!-- {m.get('device')} {m.get('gpu', '')} torch {m.get('torch')} "
                     f"threads {m.get('threads')} malloc {m.get('malloc', 'system')} size {m.get('size')} "
                     f"{m.get('time')} -->")
    # Index: (device, task, prec, batch, seconds) -> {model: record}
    groups = {}
    for r in cases:
        key = (r.get("device"), r["task"], r["prec"], r["batch"], r["seconds"])
        groups.setdefault(key, {})[r["model"]] = r

    def mem(r):
        if r is None:
            return None
        return r.get("peak_delta_mib")

    train = [(k, g) for k, g in groups.items() if k[1] in ("step1", "step2")]
    if train:
        lines += ["", "### Training step (forward + backward + Adam), min over repeats", "",
                  "| device | step | prec | batch x s | ours ms | port ms | ConvTasNet ms | ours/port | "
                  "ours/ConvTasNet | ours audio-s/s | port audio-s/s | ConvTasNet audio-s/s | "
                  "peak MiB ours / port / ConvTasNet |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for (dev, task, prec, batch, sec), g in sorted(train, key=lambda kv: str(kv[0])):
            o, p, c = g.get("ours"), g.get("port"), g.get("convtasnet")
            ms = lambda r: None if r is None or "step_s" not in r else 1000 * r["step_s"]  # noqa: E731
            aps = lambda r: None if r is None or "audio_s_per_s" not in r else r["audio_s_per_s"]  # noqa: E731
            lines.append(
                f"| {dev} | {task} | {prec} | {batch} x {sec:g} | {_fmt(ms(o))} | {_fmt(ms(p))} | "
                f"{_fmt(ms(c)) if task == 'step2' else 'n/a'} | {_fmt(_ratio(ms(o), ms(p)))} | "
                f"{_fmt(_ratio(ms(o), ms(c)))} | {_fmt(aps(o))} | {_fmt(aps(p))} | {_fmt(aps(c))} | "
                f"{_fmt(mem(o))} / {_fmt(mem(p))} / {_fmt(mem(c))} |")
    infer = [(k, g) for k, g in groups.items() if k[1] == "infer"]
    if infer:
        lines += ["", "### Inference, batch 1, inference_mode (RTF = seconds per second of audio)", "",
                  "| device | prec | mixture s | ours RTF | port RTF | ConvTasNet RTF | ours/port | "
                  "ours/ConvTasNet | peak MiB ours / port / ConvTasNet |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for (dev, task, prec, batch, sec), g in sorted(infer, key=lambda kv: str(kv[0])):
            o, p, c = (g.get(m, {}).get("rtf") for m in MODELS)
            lines.append(
                f"| {dev} | {prec} | {sec:g} | {_fmt(o, 4)} | {_fmt(p, 4)} | {_fmt(c, 4)} | "
                f"{_fmt(_ratio(o, p))} | {_fmt(_ratio(o, c))} | "
                f"{_fmt(mem(g.get('ours')))} / {_fmt(mem(g.get('port')))} / {_fmt(mem(g.get('convtasnet')))} |")
    variants = [(k, g) for k, g in groups.items() if any(m not in MODELS for m in g) and "ours" in g]
    if variants:
        lines += ["", "### Variants of ours (each undoes one speed-up, or adds torch.compile)", "",
                  "| device | task | prec | batch x s | variant | variant ms | ours ms | variant/ours | "
                  "peak MiB variant / ours | first call s |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for (dev, task, prec, batch, sec), g in sorted(variants, key=lambda kv: str(kv[0])):
            base = g["ours"].get("step_s")
            for name, r in sorted(g.items()):
                if name in MODELS or "step_s" not in r:
                    continue
                lines.append(
                    f"| {dev} | {task} | {prec} | {batch} x {sec:g} | {name} | {_fmt(1000 * r['step_s'])} | "
                    f"{_fmt(None if base is None else 1000 * base)} | {_fmt(_ratio(r['step_s'], base))} | "
                    f"{_fmt(mem(r))} / {_fmt(mem(g['ours']))} | {_fmt(r.get('first_call_s'))} |")
    targets = {(r.get("device"), r["prec"], r["batch"], r["seconds"]): r for r in cases if r["task"] == "targets"}
    if targets:
        lines += ["", "### Latent targets (front end, no grad) against the step-2 step of ours", "",
                  "| device | prec | batch x s | targets ms | step ms | fraction |", "|---|---|---|---|---|---|"]
        for (dev, prec, batch, sec), r in sorted(targets.items(), key=lambda kv: str(kv[0])):
            step = groups.get((dev, "step2", prec, batch, sec), {}).get("ours", {}).get("step_s")
            lines.append(f"| {dev} | {prec} | {batch} x {sec:g} | {_fmt(1000 * r['step_s'])} | "
                         f"{_fmt(None if step is None else 1000 * step)} | {_fmt(_ratio(r['step_s'], step))} |")
    micro = [r for r in records if str(r.get("task", "")).startswith("micro")]
    if micro:
        dw = {}
        for r in micro:
            if r["task"] == "micro_depthwise":
                dw.setdefault((r["prec"], r["mode"], r["dilation"]), {})[r["impl"]] = r["ms"]
        if dw:
            lines += ["", "### Depthwise conv: F.conv1d vs shifted slices (ms, fwd+bwd for train)", "",
                      "| prec | mode | dilation | conv ms | shift ms | shift/conv |", "|---|---|---|---|---|---|"]
            for (prec, mode, d), v in sorted(dw.items()):
                lines.append(f"| {prec} | {mode} | {d} | {_fmt(v.get('conv'))} | {_fmt(v.get('shift'))} | "
                             f"{_fmt(_ratio(v.get('shift'), v.get('conv')))} |")
        other = {}
        for r in micro:
            if r["task"] in ("micro_head", "micro_norm"):
                other.setdefault((r["task"], r["prec"], r["mode"], tuple(r["shape"])), {})[r["impl"]] = r["ms"]
        if other:
            lines += ["", "### Mask head and gLN kernels (ms; train = fwd+bwd)", "",
                      "| kernel | prec | mode | shape | ours ms | reference ms | ours/reference |",
                      "|---|---|---|---|---|---|---|"]
            for (task, prec, mode, shape), v in sorted(other.items()):
                if task == "micro_head":
                    name, a, b = "mask head: Toeplitz vs Conv2d", v.get("toeplitz"), v.get("conv2d")
                else:
                    name, a, b = "gLN: group_norm vs asteroid GlobLN", v.get("fused_group_norm"), v.get("asteroid_globln")
                lines.append(f"| {name} | {prec} | {mode} | {list(shape)} | {_fmt(a)} | {_fmt(b)} | "
                             f"{_fmt(_ratio(a, b))} |")
    errors = [r for r in records if "error" in r or "mem_error" in r]
    if errors:
        lines += ["", "### Errors", ""]
        for r in errors:
            lines.append(f"- {r.get('device')} {r.get('task')} {r.get('model')} {r.get('prec')} "
                         f"b{r.get('batch')} {r.get('seconds')}s: {r.get('error') or r.get('mem_error')}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
