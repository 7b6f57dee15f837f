"""Recipe configuration: defaults, YAML loading and validation.

Every value a stage uses comes from here, a conf file or a command-line override, and is saved with
the experiment (``exp/<tag>/conf.yml``). Unknown keys and wrong types fail before any work starts,
naming the key.
"""
import copy
from pathlib import Path

import yaml

# The one schema of defaults: section -> key -> default. Its values are those of the recipe's
# conf/default.yml (tests/test_config.py keeps them equal), except MACHINE_KEYS, which default.yml
# sets for 2 CPU cores and the schema keeps portable (auto accelerator, one process, no time caps).
# The type of a default is the accepted type (ints are accepted for floats); keys in NULLABLE may
# also be null.
DEFAULTS = {
    "data": {
        "sample_rate": 8000,
        "n_src": 2,
        "segment": 1.0,           # training segment, seconds
        "val_segment": None,      # validation crops, seconds (null: whole utterances)
        "dynamic_mixing": True,   # remix the training utterance pool on the fly
        "num_workers": 1,
        "loader_timeout_s": 600.0,  # a DataLoader worker that gives no batch for this long stops the run
                                    # with an error instead of a silent hang (0: wait forever)
        "n_tr": 4000, "n_cv": 300, "n_tt": 200,  # mixtures per split for the embedded corpus
        "corpus_seed": 0,
        "train_speakers": None,   # the embedded corpus's tr/cv/tt speakers (null: all not held out or opt-in)
        "speed_perturb": 0.0,     # dynamic mixing: probability that a source is speed-perturbed
        "speed_range": [0.95, 1.05],  # ... at a speed drawn uniformly from this range
        "max_snr_db": 5.0,        # dynamic mixing: relative level of the sources, U(0, max_snr_db) dB
        "noise": None,            # noise added to every split's mixtures: null (off) | white | pink | brown
                                  # (power spectrum 1/f^0, 1/f, 1/f^2); not a target, scores are the speakers'
        "noise_snr_db": [0.0, 10.0],  # ... at an SNR of the speech mixture over the noise, U(low, high) dB
    },
    "front_end": {
        "n_filters": 128,
        "kernel_size": 40,
        "stride": 20,
    },
    "step1": {
        "batch_size": 8,
        "max_steps": 2000,
        "lr": 0.003,
        "val_every_n_steps": 1000,
        "limit_val_batches": 25,
        "grad_clip": 5.0,
        "max_minutes": None,
        "init_from_model": "skip",    # with step2.init_from: skip (use the model's front end) | finetune it
    },
    "masker": {
        "type": "tdcn",               # the step-2 separator: tdcn (ours, the paper's) or an Asteroid masker,
                                      # see twostep_asteroid/separators.py; tdcn reads the keys below
        "bn_chan": 64,
        "hid_chan": 128,
        "n_blocks": 8,
        "n_repeats": 2,
        "conv_kernel_size": 3,
        "norm_type": "gLN",
        "mask_head": "dense",
        "skip_chan": 0,               # 0: the paper's TDCN (residual only); >0: Conv-TasNet skips
        "feature_norm": True,         # per-basis instance norm of the encoded mixture (not in the paper)
        "causal": False,              # causal masker (left-padded convs; needs norm_type cLN, feature_norm false)
    },
    # Keyword arguments of Asteroid's maskers (their own names), read when masker.type names them.
    "masker_sudormrf": {              # asteroid.masknn.SuDORMRF / SuDORMRFImproved (needs an even N)
        "bn_chan": 128,
        "num_blocks": 8,
        "upsampling_depth": 4,
        "mask_act": "softmax",        # over sources, as the ideal latent masks
    },
    "masker_dprnn": {                 # asteroid.masknn.DPRNN
        "bn_chan": 64,
        "hid_size": 64,
        "chunk_size": 100,
        "hop_size": None,             # null: chunk_size // 2
        "n_repeats": 2,
        "norm_type": "gLN",
        "mask_act": "sigmoid",        # Asteroid's DPRNN applies a softmax over the bases, not the sources
        "bidirectional": True,
        "rnn_type": "LSTM",
        "num_layers": 1,
        "dropout": 0.0,
    },
    "masker_tdconvnet": {             # asteroid.masknn.TDConvNet (Conv-TasNet's masker)
        "bn_chan": 64,
        "hid_chan": 128,
        "skip_chan": 64,
        "conv_kernel_size": 3,
        "n_blocks": 8,
        "n_repeats": 2,
        "norm_type": "gLN",
        "mask_act": "softmax",
        "causal": False,
    },
    "step2": {
        "batch_size": 4,
        "max_steps": 6300,
        "lr": 1e-3,
        "scheduler": "cosine",       # cosine | plateau | none
        "plateau_patience": 5,
        "early_stop_patience": None,  # validations without improvement; null: off
        "latent_weight": 1.0,
        "waveform_weight": 1.0,
        "train_front_end": False,     # true: end-to-end baseline (same masker, joint training)
        "train_decoder": True,        # the decoder trains with the masker; the encoder stays frozen
        "val_every_n_steps": 500,
        "limit_val_batches": 50,
        "grad_clip": 5.0,
        "ckpt_every_n_steps": 250,
        "max_minutes": None,          # wall-clock cap of the training (null: none), on top of max_steps
        "init_from": None,            # fine-tuning: start from this trained model (Hub id, folder or .pth)
    },
    "step3": {                        # joint fine-tuning of front end and separator on waveforms, from step 2
        "batch_size": 4,
        "max_steps": 0,               # 0: off
        "lr": 1e-4,
        "scheduler": "cosine",
        "plateau_patience": 5,
        "early_stop_patience": None,
        "val_every_n_steps": 500,
        "limit_val_batches": 50,
        "grad_clip": 5.0,
        "ckpt_every_n_steps": 250,
        "max_minutes": None,
    },
    "trainer": {
        "accelerator": "auto",
        "devices": 1,
        "num_nodes": 1,
        "strategy": "auto",
        "precision": "32-true",   # "bf16-mixed" for bf16 autocast
        "seed": 0,
        "num_threads": None,      # torch intra-op threads on CPU; null: torch's default
        "compile": False,         # torch.compile the masker for step 2 (pays on GPUs; see bench/README.md)
        "ddp_timeout_minutes": 10.0,  # strategy ddp: how long a process waits in a collective for the others
    },
    "eval": {
        "metrics": ["si_sdr", "sdr", "stoi", "pesq"],
        "n_examples": 4,           # separated examples written as wav
        "stft_oracle_n_fft": 256,
        "max_utterances": None,    # null: the whole test set
        "num_workers": 2,          # processes computing the metrics
    },
}

MACHINE_KEYS = {("trainer", "accelerator"), ("trainer", "devices"), ("trainer", "strategy"),
                ("trainer", "num_threads"), ("trainer", "compile"), ("step1", "max_minutes"),
                ("step2", "max_minutes")}

# Keys that may be null, with the type of their non-null values.
NULLABLE = {
    ("data", "val_segment"): float,
    ("data", "train_speakers"): list,
    ("data", "noise"): str,
    ("step1", "max_minutes"): float,
    ("step2", "max_minutes"): float,
    ("step2", "early_stop_patience"): int,
    ("step2", "init_from"): str,
    ("step3", "max_minutes"): float,
    ("step3", "early_stop_patience"): int,
    ("masker_dprnn", "hop_size"): int,
    ("trainer", "num_threads"): int,
    ("eval", "max_utterances"): int,
}
# Keys that take either type: Lightning reads an int as a number of batches, a float as a fraction.
EITHER_INT_OR_FLOAT = {("step1", "limit_val_batches"), ("step2", "limit_val_batches"),
                       ("step3", "limit_val_batches")}
CHOICES = {
    ("step2", "scheduler"): {"cosine", "plateau", "none"},
    ("step3", "scheduler"): {"cosine", "plateau", "none"},
    ("masker", "type"): {"tdcn", "sudormrf", "sudormrf_improved", "dprnn", "tdconvnet"},
    ("masker_dprnn", "rnn_type"): {"RNN", "LSTM", "GRU"},
    ("masker", "mask_head"): {"toeplitz", "dense"},
    ("step1", "init_from_model"): {"skip", "finetune"},
    ("data", "noise"): {"white", "pink", "brown"},  # data.mixing.NOISE_COLORS (tests keep them equal)
}


def _is_speed_range(v):
    return (len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
            and 0 < v[0] <= v[1])


def _is_db_range(v):
    return (len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
            and v[0] <= v[1])


# Further checks of a value: (predicate, what it must be).
CHECKS = {
    ("data", "speed_perturb"): (lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1] (0: off)"),
    ("data", "speed_range"): (_is_speed_range, "[low, high] with 0 < low <= high, e.g. [0.95, 1.05]"),
    ("data", "max_snr_db"): (lambda v: v >= 0, "a level range in dB, >= 0 (e.g. 5.0)"),
    ("data", "loader_timeout_s"): (lambda v: v >= 0, "seconds, >= 0 (0: wait forever; e.g. 600.0)"),
    ("data", "noise_snr_db"): (_is_db_range, "[low, high] in dB with low <= high, e.g. [0.0, 10.0]"),
    ("data", "train_speakers"): (lambda v: all(isinstance(x, str) and x for x in v),
                                 "a list of speaker ids (corpus.json), e.g. [allison, june]"),
}


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key and the fix."""


def _check_value(section, key, value, default, source):
    where = f"{section}.{key} in {source}"
    if value is None:
        if (section, key) in NULLABLE:
            return None
        raise ConfigError(f"{where} may not be null (expected {type(default).__name__}, e.g. {default!r}).")
    expected = type(default) if default is not None else NULLABLE.get((section, key))
    if (section, key) in EITHER_INT_OR_FLOAT and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if expected is not None and not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"{where} must be a {expected.__name__}, got {value!r} ({type(value).__name__}).")
    choices = CHOICES.get((section, key))
    if choices and value not in choices:
        raise ConfigError(f"{where} must be one of {sorted(choices)}, got {value!r}.")
    check = CHECKS.get((section, key))
    if check and not check[0](value):
        raise ConfigError(f"{where} must be {check[1]}, got {value!r}.")
    return value


def merge_config(base, update, source="the configuration"):
    """Return ``base`` updated with ``update``, validating every key and type."""
    merged = copy.deepcopy(base)
    if not isinstance(update, dict):
        raise ConfigError(f"{source} must be a mapping of sections, got {type(update).__name__}.")
    for section, values in update.items():
        if section not in DEFAULTS:
            raise ConfigError(f"Unknown section {section!r} in {source}; known: {sorted(DEFAULTS)}.")
        if not isinstance(values, dict):
            raise ConfigError(f"Section {section!r} in {source} must be a mapping.")
        for key, value in values.items():
            if key not in DEFAULTS[section]:
                raise ConfigError(
                    f"Unknown key {section}.{key} in {source}; known keys of {section}: "
                    f"{sorted(DEFAULTS[section])}."
                )
            merged[section][key] = _check_value(section, key, value, DEFAULTS[section][key], source)
    return merged


def parse_override(text):
    """``"section.key=value"`` (value parsed as YAML) -> ``{section: {key: value}}``."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"Override {text!r} must look like section.key=value (e.g. step2.max_steps=100).")
    dotted, raw = text.split("=", 1)
    section, key = dotted.split(".", 1)
    return {section: {key: yaml.safe_load(raw)}}


def load_config(path=None, overrides=()):
    """Defaults, updated by the YAML file at ``path`` and by ``section.key=value`` overrides."""
    conf = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"Configuration file {path} does not exist.")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from err
        conf = merge_config(conf, loaded, source=str(path))
    for text in overrides:
        conf = merge_config(conf, parse_override(text), source=f"override {text!r}")
    check_consistency(conf)
    return conf


def check_consistency(conf):
    """Combinations of keys that cannot work together (checked after all overrides)."""
    masker = conf["masker"]
    if masker["causal"]:
        from .masknn import CAUSAL_NORMS

        if masker["norm_type"] not in CAUSAL_NORMS:
            raise ConfigError(f"masker.causal is true but masker.norm_type is {masker['norm_type']!r}, which "
                              "normalises over future frames; use cLN (per frame, streams) or cgLN (cumulative).")
        if masker["feature_norm"]:
            raise ConfigError("masker.causal is true but masker.feature_norm is true (per-basis statistics over "
                              "the whole signal); set masker.feature_norm=false.")


def save_config(conf, path):
    """Write ``conf`` as YAML, atomically."""
    from .fileio import atomic_write_text

    return atomic_write_text(path, yaml.safe_dump(conf, sort_keys=False))


def get_value(conf, dotted):
    """``conf["section"]["key"]`` from ``"section.key"``."""
    section, key = dotted.split(".", 1)
    try:
        return conf[section][key]
    except KeyError:
        raise ConfigError(f"Unknown key {dotted}.") from None


def freeze_config(path, out, overrides=()):
    """Validate the configuration and write it to ``out`` (the experiment's ``conf.yml``).

    If ``out`` exists with a different content, fail: an experiment folder holds one
    configuration, and finished stages would otherwise be silently reused under a new one.
    """
    conf = load_config(path, overrides)
    out = Path(out)
    if out.is_file():
        existing = load_config(out)
        if existing != conf:
            changed = sorted(f"{s}.{k}" for s in conf for k in conf[s] if existing[s].get(k) != conf[s][k])
            raise ConfigError(
                f"{out} was written with another configuration (differs in {', '.join(changed)}). "
                "Use another --tag for the new configuration, or remove the experiment folder."
            )
        return conf
    save_config(conf, out)
    return conf


def main(argv=None):
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="Read and freeze recipe configurations.")
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("get", help="print one value (section.key)")
    get.add_argument("key")
    get.add_argument("--conf")
    get.add_argument("overrides", nargs="*")
    freeze = sub.add_parser("freeze", help="validate and write the experiment's conf.yml")
    freeze.add_argument("--conf")
    freeze.add_argument("--out", required=True)
    freeze.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    try:
        if args.command == "get":
            value = get_value(load_config(args.conf, args.overrides), args.key)
            if isinstance(value, list):  # for shell scripts: comma-separated
                value = ",".join(str(v) for v in value)
            print("" if value is None else (str(value).lower() if isinstance(value, bool) else value))
        else:
            freeze_config(args.conf, args.out, args.overrides)
    except ConfigError as err:
        print(f"Configuration error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the experiment folder cannot be created or written
        print(f"Cannot write {args.out}: {err}. Choose another --exp_root/--tag or fix its permissions.",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
