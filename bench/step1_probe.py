"""Step-1 variants for the step-2 probes: a front end whose encoder bias is free, non-positive or zero.

Issue 19, lever 6 asks whether a front end that is easier to predict, at some cost in oracle, lets
step 2 learn faster. Step 1 learns positive biases, so most bases fire on every frame (the ReLU
is nearly idle) and the latents sit on a pedestal. This probe trains step 1 with the bias projected
after every update: ``free`` (the recipe), ``nonpos`` (bases fire only above a threshold: sparse
latents) or ``zero`` (no bias). It is the recipe's step 1 on one process (batch 8 x 1 s, Adam 3e-3,
gradient clip 5, dynamic mixing, the step-1 loss), without Lightning, so that the projection sits
right after the optimiser step. It saves the front end and prints its oracle on whole validation
utterances and the share of frames each basis fires on; feed the file to ``bench/step2_probe.py``:

    python bench/step1_probe.py --bias zero --out bench/results/step1_probes/zero.pth
    python bench/step2_probe.py --front_end bench/results/step1_probes/zero.pth --input feature_norm \\
        --loss latent+wave --train_decoder --name zero_bias

``--oracle_of PATH`` only measures a saved front end (e.g. ``exp/<tag>/step1/best_model.pth``).
"""
import argparse
import json
import time
from pathlib import Path

import torch

BIASES = ("free", "nonpos", "zero")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default="egs/wsj0-2mix/twostep/data/prompts/json")
    p.add_argument("--bias", choices=BIASES, default="free")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--out", help="where to save the front end (its serialize() dict)")
    p.add_argument("--oracle_of", help="measure this saved front end instead of training one")
    p.add_argument("--n_val", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def project_bias(front_end, kind):
    """Apply the constraint ``kind`` to the encoder's bias, in place."""
    with torch.no_grad():
        bias = front_end.encoder.filterbank.bias
        if kind == "nonpos":
            bias.clamp_(max=0.0)
        elif kind == "zero":
            bias.zero_()


def describe(front_end, dataset, n_val):
    """Oracle SI-SDRi (dB) on the first ``n_val`` whole utterances, and how often the bases fire."""
    from twostep_asteroid.metrics import si_sdr_improvement

    front_end.eval()
    oracle, active = [], []
    with torch.no_grad():
        for i in range(min(n_val, len(dataset))):
            mix, sources = dataset[i]
            estimates = front_end(mix[None], sources[None])["estimates"][:, : sources.shape[0]]
            oracle.append(si_sdr_improvement(estimates, sources[None], mix[None]).item())
            active.append((front_end.encode(mix[None])[0] > 0).float().mean(-1))
    share = torch.stack(active).mean(0)
    return {"oracle_sisdri": sum(oracle) / len(oracle), "active_share": share.mean().item(),
            "bases_always_on": int((share > 0.99).sum()), "bases_never_on": int((share < 0.01).sum())}


def train(args):
    from twostep_asteroid import TwoStepFrontEnd
    from twostep_asteroid.data.datasets import make_dataset, set_epoch
    from twostep_asteroid.losses import front_end_loss

    front_end = TwoStepFrontEnd(n_src=2, n_filters=128, kernel_size=40, stride=20)
    project_bias(front_end, args.bias)
    train_set = make_dataset(Path(args.data_dir) / "tr", segment=1.0, dynamic_mixing=True, seed=args.seed)
    loader = torch.utils.data.DataLoader(train_set, batch_size=8, shuffle=True, num_workers=1, drop_last=True)
    optimizer = torch.optim.Adam(front_end.parameters(), lr=3e-3)
    step, epoch, start = 0, 0, time.time()
    while step < args.steps:
        set_epoch(train_set, epoch)
        epoch += 1
        for mix, sources in loader:
            loss = front_end_loss(front_end(mix, sources)["estimates"], sources)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(front_end.parameters(), 5.0)
            optimizer.step()
            project_bias(front_end, args.bias)
            step += 1
            if step % 500 == 0:
                print(f"step {step} {time.time() - start:.0f} s train SI-SDR {-loss.item():.2f} dB", flush=True)
            if step >= args.steps:
                break
    return front_end


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    from twostep_asteroid import TwoStepFrontEnd
    from twostep_asteroid.data.datasets import make_dataset

    if args.oracle_of:
        front_end = TwoStepFrontEnd.from_pretrained(args.oracle_of)
    else:
        if not args.out:
            raise SystemExit("--out is needed to save the trained front end")
        front_end = train(args)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        torch.save(front_end.serialize(), args.out)
    report = describe(front_end, make_dataset(Path(args.data_dir) / "cv", segment=None), args.n_val)
    bias = None if args.oracle_of else args.bias  # a saved front end: constraint unknown
    print(json.dumps({"front_end": args.oracle_of or args.out, "bias": bias, **report}), flush=True)


if __name__ == "__main__":
    main()
