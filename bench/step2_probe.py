"""Short step-2 learning-curve probes: waveform SI-SDRi on validation mixtures against steps and time.

What produced the "Step 2" tables of the README: one variant per run, a frozen step-1 front end,
1 thread, validation every ``--every`` steps on the first ``--n_val`` whole cv utterances (SI-SDRi
with PIT). Variants change one thing against the recipe's step 2: the loss, the learning rate, the
batch, dynamic mixing, the masker's input (``--input``) or skip connections. ``--end_to_end`` trains
the same masker with a fresh, trainable front end instead (the paper's baseline); ``--train_front_end``
trains step 1's encoder and decoder with the masker from the start (waveform loss); ``--train_decoder``
trains step 1's decoder only (the recipe's ``step2.train_decoder``); ``--masker_input separate`` gives
the masker its own fresh encoder of the mixture, its masks still applied to step 1's latents;
``--encoder_lr 0.1`` trains step 1's encoder too, at a tenth of the learning rate, with the latent
targets recomputed from it at every step.

    python bench/step2_probe.py --front_end exp/<tag>/step1/best_model.pth --name base
    python bench/step2_probe.py --front_end ... --input feature_norm --name featnorm
    python bench/step2_probe.py --front_end ... --end_to_end --name e2e
    python bench/step2_probe.py --front_end ... --input feature_norm --loss latent+wave --train_decoder --name dec

It prints one line per validation and writes ``<out_dir>/<name>.json`` (arguments and the curve).
Figures from one seed: differences of a few tenths of a dB are within run-to-run noise.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

INPUTS = ("gln", "feature_norm", "pedestal", "log")


class ProbeInput(nn.Module):
    """Transforms of the encoded mixture before the masker, for probing only. ``feature_norm`` is
    the same computation as ``TDCN(feature_norm=True)``; the other two were tried and not kept."""

    def __init__(self, masker, kind, filterbank):
        super().__init__()
        self.masker, self.kind, self.filterbank = masker, kind, filterbank

    def forward(self, encoded):
        if self.kind == "pedestal":  # remove the floor relu(bias) that silence encodes to
            encoded = encoded - torch.relu(self.filterbank.bias).unsqueeze(-1)
        elif self.kind == "log":
            encoded = torch.log(encoded + 1e-3)
        return self.masker(encoded)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--front_end", required=True, help="step-1 best_model.pth")
    p.add_argument("--data_dir", default="egs/wsj0-2mix/twostep/data/prompts/json")
    p.add_argument("--name", default="probe")
    p.add_argument("--out_dir", default="bench/results/step2_probes")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--n_val", type=int, default=60)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument("--segment", type=float, default=1.0)
    p.add_argument("--static", action="store_true", help="the corpus's fixed mixtures, no dynamic mixing")
    p.add_argument("--loss", choices=("wave", "latent+wave"), default="wave")
    p.add_argument("--input", choices=INPUTS, default="gln")
    p.add_argument("--skip_chan", type=int, default=0)
    p.add_argument("--end_to_end", action="store_true")
    p.add_argument("--masker_input", choices=("shared", "separate"), default="shared",
                   help="separate: the masker reads the mixture through its own fresh, trainable encoder; "
                        "its masks still apply to the frozen step-1 latents")
    p.add_argument("--train_decoder", action="store_true", help="the step-1 decoder is trained in step 2")
    p.add_argument("--train_front_end", action="store_true",
                   help="the step-1 encoder and decoder are trained with the masker from the start (waveform loss)")
    p.add_argument("--encoder_lr", type=float, default=0.0,
                   help="> 0: the step-1 encoder trains too, at this multiple of --lr, and the latent "
                        "targets follow it (computed from the current encoder at every step)")
    p.add_argument("--bn_chan", type=int, default=64)
    p.add_argument("--hid_chan", type=int, default=128)
    p.add_argument("--n_blocks", type=int, default=8)
    p.add_argument("--n_repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def build(args):
    from twostep_asteroid import TwoStepFrontEnd, TwoStepTDCN

    front_end = TwoStepFrontEnd.from_pretrained(args.front_end)
    if args.end_to_end:
        fe_args = front_end.get_model_args()
        front_end = TwoStepFrontEnd(**fe_args)
    model = TwoStepTDCN.from_front_end(
        front_end, bn_chan=args.bn_chan, hid_chan=args.hid_chan, n_blocks=args.n_blocks,
        n_repeats=args.n_repeats, mask_head="dense", skip_chan=args.skip_chan,
        feature_norm=args.input == "feature_norm", train_front_end=args.end_to_end or args.train_front_end)
    if args.input in ("pedestal", "log"):
        model.masker = ProbeInput(model.masker, args.input, model.encoder.filterbank)
    if args.train_decoder:
        model.set_decoder_trainable(True)
    if args.encoder_lr > 0:
        model.encoder.requires_grad_(True)
    if args.masker_input == "separate":
        model = SeparateInputModel(model)
    return model


class SeparateInputModel(nn.Module):
    """Probe only: the masker reads the mixture through its own trainable encoder (same shape as the
    step-1 encoder, fresh weights); its masks apply to the frozen step-1 latents, decoded by the
    step-1 decoder, so the latent targets are unchanged."""

    def __init__(self, model):
        super().__init__()
        from asteroid_filterbanks import Encoder

        from twostep_asteroid.filterbanks import TwoStepFB

        fb = model.encoder.filterbank
        self.model = model
        self.masker = model.masker
        self.input_encoder = Encoder(TwoStepFB(fb.n_filters, fb.kernel_size, fb.stride, fb.sample_rate, bias=True))

    @property
    def front_end(self):
        return self.model.front_end

    def estimate_latents(self, wav):
        tf_rep = self.model.forward_encoder(wav.unsqueeze(1))
        masks = self.masker(self.input_encoder(wav.unsqueeze(1)))
        return self.model.apply_masks(tf_rep, masks), tf_rep

    def decode_latents(self, latents, like):
        return self.model.decode_latents(latents, like)

    def forward(self, wav):
        return self.decode_latents(self.estimate_latents(wav)[0], wav)


def make_optimizer(model, args):
    """Adam on the trainable parameters; under ``--encoder_lr`` the encoder is a group of its own at
    ``lr * encoder_lr``."""
    params = [p for p in model.parameters() if p.requires_grad]
    encoder = {id(p) for p in model.encoder.parameters()} if args.encoder_lr > 0 else set()
    groups = [{"params": [p for p in params if id(p) not in encoder]}]
    if encoder:
        groups.append({"params": [p for p in params if id(p) in encoder], "lr": args.lr * args.encoder_lr})
    return torch.optim.Adam(groups, lr=args.lr)


def validation_sisdri(model, dataset, n_val):
    from asteroid.losses import PITLossWrapper, pairwise_neg_sisdr

    from twostep_asteroid.systems import mixture_sisdr

    pit = PITLossWrapper(pairwise_neg_sisdr, pit_from="pw_mtx")
    model.eval()
    scores = []
    with torch.no_grad():
        for i in range(min(n_val, len(dataset))):
            mix, sources = dataset[i]
            mix, sources = mix[None], sources[None]
            est_sisdr = -pit(model(mix), sources).item()
            mix_sisdr = mixture_sisdr(mix, sources).item()
            scores.append(est_sisdr - mix_sisdr)
    model.train()
    return float(np.mean(scores))


def main(argv=None):
    args = parse_args(argv)
    if (args.end_to_end or args.train_front_end) and args.loss != "wave":
        raise SystemExit("--end_to_end trains on waveforms only: latent targets of a moving front end are not targets")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    from twostep_asteroid.data.datasets import make_dataset, set_epoch
    from twostep_asteroid.losses import TwoStepLoss

    model = build(args)
    data = Path(args.data_dir)
    train_set = make_dataset(data / "tr", segment=args.segment, dynamic_mixing=not args.static, seed=args.seed)
    val_set = make_dataset(data / "cv", segment=None)
    loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                         num_workers=1, drop_last=True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(model, args)
    loss_func = TwoStepLoss(1.0 if args.loss == "latent+wave" else 0.0, 1.0)
    print(f"{args.name}: {sum(p.numel() for p in model.masker.parameters())} masker parameters", flush=True)
    step, epoch, start, curve = 0, 0, time.time(), []
    while step < args.steps:
        set_epoch(train_set, epoch)
        epoch += 1
        for mix, sources in loader:
            est_latents, _ = model.estimate_latents(mix)
            est_wavs = model.decode_latents(est_latents, mix)
            if loss_func.latent_weight > 0:
                with torch.no_grad():
                    targets = model.front_end.ideal_latents(mix, sources)[2]
            else:
                targets = est_latents.detach()
            loss = loss_func(est_latents, targets, est_wavs, sources)["loss"]
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            optimizer.step()
            step += 1
            if step % args.every == 0:
                score = validation_sisdri(model, val_set, args.n_val)
                curve.append({"step": step, "seconds": round(time.time() - start, 1), "val_sisdri": score})
                print(f"{args.name} step {step} {time.time() - start:.0f} s val SI-SDRi {score:.2f} dB", flush=True)
            if step >= args.steps:
                break
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps({"args": vars(args), "curve": curve}, indent=1))


if __name__ == "__main__":
    main()
