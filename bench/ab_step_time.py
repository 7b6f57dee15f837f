"""Interleaved A/B of the step-2 training step time of ours against one variant, in one process.

Steps of the two models alternate (so that load changes hit both alike); the first
``--warmup`` steps of each are dropped. What the README's PReLU and torch.compile figures came from:

    python -m bench.ab_step_time --variant torch_prelu --size recipe --repeats 40
    python -m bench.ab_step_time --variant torch_prelu --size paper --repeats 6
    python -m bench.ab_step_time --variant compiled --size recipe --repeats 30

``--size recipe`` is conf/default.yml's model (N=128, L=40, hop 20, B=64, H=128, X=8, R=2, dense
head, feature norm); ``paper`` is run_bench's paper configuration. Batch 4 x 1 s, the recipe's
step-2 loss (latent + waveform), Adam. Prints median and min seconds per step.
"""
import argparse
import time

import torch

from bench import run_bench
from twostep_asteroid import TwoStepTDCN
from twostep_asteroid.losses import TwoStepLoss

RECIPE = dict(n_filters=128, kernel_size=40, stride=20, bn_chan=64, hid_chan=128, n_blocks=8, n_repeats=2,
              mask_head="dense", feature_norm=True)


def build(size):
    if size == "recipe":
        return TwoStepTDCN(n_src=2, **RECIPE)
    return run_bench.build_model("ours", size)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", choices=("torch_prelu", "compiled"), required=True)
    p.add_argument("--size", choices=("recipe", "paper", "tiny"), default="recipe")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ours, variant = build(args.size), build(args.size)
    variant.load_state_dict(ours.state_dict())
    if args.variant == "torch_prelu":
        run_bench.swap_in_torch_prelu(variant)
    else:
        variant.masker.compile()
    n = int(8000 * args.seconds)
    mixture, sources = torch.randn(args.batch, n), torch.randn(args.batch, 2, n)
    loss_func = TwoStepLoss(1.0, 1.0)
    models = {"ours": ours, args.variant: variant}
    optimizers = {k: torch.optim.Adam([q for q in m.parameters() if q.requires_grad], 1e-4)
                  for k, m in models.items()}

    def step(name):
        model = models[name]
        start = time.perf_counter()
        est_latents, _ = model.estimate_latents(mixture)
        est_wavs = model.decode_latents(est_latents, mixture)
        with torch.no_grad():
            targets = model.front_end.ideal_latents(mixture, sources)[2]
        loss = loss_func(est_latents, targets, est_wavs, sources)["loss"]
        optimizers[name].zero_grad()
        loss.backward()
        optimizers[name].step()
        return time.perf_counter() - start

    first = {name: step(name) for name in models}  # includes compilation for "compiled"
    times = {name: [] for name in models}
    for i in range(args.warmup + args.repeats):
        for name in models:
            t = step(name)
            if i >= args.warmup:
                times[name].append(t)
    for name, values in times.items():
        values.sort()
        print(f"{args.size} {args.batch}x{args.seconds:g}s {name}: median {values[len(values) // 2]:.3f} s, "
              f"min {values[0]:.3f} s over {len(values)} steps (first call {first[name]:.1f} s)")


if __name__ == "__main__":
    main()
