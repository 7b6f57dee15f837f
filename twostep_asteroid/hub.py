"""Sharing a TwoStep model on the Hugging Face Hub: model card, Hub-ready folder, upload.

* :func:`model_card`: the ``README.md`` of a Hub model, with Asteroid-style YAML metadata;
* :func:`package_for_hub`: ``config.json`` + ``model.safetensors`` + ``README.md`` in one folder;
* :func:`upload_to_hub`: that folder to a Hub repo (with a token, else a clear refusal);
* :func:`corpus_card_infos`: the dataset and licences a card states, from the corpus folder;
* :func:`training_noise`: the noise added to the training mixtures (``data.noise``), from the run's conf;
* ``python -m twostep_asteroid.hub package``: all of it for a training run.

Saving and loading are :mod:`twostep_asteroid.serialization` (local files) and
:mod:`twostep_asteroid.sources` (Hub ids and URLs, ``from_pretrained``).
"""
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from .serialization import BEST_MODEL_NAME, CONFIG_NAME, WEIGHTS_NAME, load_config_and_weights, save_pretrained

#: Display names of the usual separation metrics (keys of ``results``).
METRIC_NAMES = {
    "si_sdr": "SI-SDR (dB)",
    "si_sdr_imp": "SI-SDRi (dB)",
    "sdr": "SDR (dB)",
    "sdr_imp": "SDRi (dB)",
    "sir": "SIR (dB)",
    "sir_imp": "SIRi (dB)",
    "sar": "SAR (dB)",
    "sar_imp": "SARi (dB)",
    "stoi": "STOI",
    "stoi_imp": "STOIi",
    "pesq": "PESQ",
    "pesq_imp": "PESQi",
}

_CITATION = """@inproceedings{tzinis2020two,
  title={Two-Step Sound Source Separation: Training on Learned Latent Targets},
  author={Tzinis, Efthymios and Venkataramani, Shrikant and Wang, Zhepei and Subakan, Cem and Smaragdis, Paris},
  booktitle={ICASSP 2020 - 2020 IEEE International Conference on Acoustics, Speech and Signal Processing (ICASSP)},
  pages={31--35},
  year={2020},
  organization={IEEE}
}"""


def _conf_of(model_or_conf):
    if isinstance(model_or_conf, dict):
        return model_or_conf
    return model_or_conf.serialize()


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "dataset"


def _fmt(value):
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1000:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 0.1 or value == 0 else f"{value:.4f}"
    return str(value)


def model_card(model_or_conf, results=None, dataset_name=None, license="cc-by-sa-4.0", repo_id=None,
               extra_infos=None, description=None):
    """Text of a Hub model card (``README.md``) with Asteroid-style YAML metadata.

    Args:
        model_or_conf: A model with ``serialize()`` or its serialized dict.
        results (dict, optional): Test-set metrics, e.g. ``{"si_sdr": 15.1, "si_sdr_imp": 15.2}``
            (keys of :data:`METRIC_NAMES` get display names; other numeric keys are kept as is).
            Nested dicts are further test sets (``results.json``'s unseen-speaker blocks, e.g.
            ``{"unseen": {"si_sdr_imp": 2.0}}``): a column each in the results table and an
            entry each in ``model-index``.
        dataset_name (str or list, optional): Dataset(s) trained/evaluated on (e.g. ``"wsj0-2mix"``).
        license (str): Licence id of the weights (Asteroid's Hub models use ``cc-by-sa-4.0``).
        repo_id (str, optional): ``org/name``, for the title and the usage snippet.
        extra_infos (dict, optional): More rows for the "Training" table (plain values).
            ``training_noise`` (``{"color": "pink", "snr_db": [0.0, 10.0]}``, as
            :func:`training_noise` reads it from the run's ``data.noise``) states the noise added to
            the training mixtures; absent or None: nothing is said (clean training mixtures).
        description (str, optional): A paragraph put under the title.

    Returns:
        str: Markdown with a YAML front matter (tags, datasets, license, metrics, sample rate,
        ``model-index`` when there are results).
    """
    import yaml

    conf = _conf_of(model_or_conf)
    args = dict(conf["model_args"])
    name = conf["model_name"]
    sample_rate = args.get("sample_rate")
    datasets = [dataset_name] if isinstance(dataset_name, str) else list(dataset_name or [])
    numeric = lambda d: {k: v for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    extra_sets = {k: numeric(v) for k, v in (results or {}).items() if isinstance(v, dict) and numeric(v)}
    results = numeric(results or {})
    title = repo_id or f"{name} model"

    meta = {
        "tags": ["asteroid", "audio", name, "audio-to-audio", "twostep"],
        "pipeline_tag": "audio-to-audio",
        "license": license,
    }
    if license == "other":
        meta["license_name"] = "mixed-training-data-licences"
    if datasets:
        meta["datasets"] = datasets
    if results:
        meta["metrics"] = list(results)
    if sample_rate is not None:
        meta["sample_rate"] = int(sample_rate) if float(sample_rate).is_integer() else float(sample_rate)
    if results and datasets:
        sets = [(datasets[0], results)] + [(f"{datasets[0]} ({k} speakers)", v) for k, v in extra_sets.items()]
        meta["model-index"] = [{
            "name": title.split("/")[-1],
            "results": [{
                "task": {"type": "audio-to-audio", "name": "Audio Source Separation"},
                "dataset": {"type": _slug(datasets[0]), "name": set_name},
                "metrics": [{"type": k, "name": METRIC_NAMES.get(k, k), "value": float(v)}
                            for k, v in set_results.items()],
            } for set_name, set_results in sets],
        }]
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)

    lines = ["---", front.rstrip(), "---", "", f"# {title}", ""]
    lines.append(description or (
        f"A `{name}` model of the two-step separation method (Tzinis et al., ICASSP 2020): a learned "
        "front end trained first, whose encoder defines ideal latent targets, then a separator trained "
        "on those targets with that encoder frozen. "
        "Needs the `twostep-asteroid` package (an Asteroid plugin) to load."))
    parent = conf.get("infos", {}).get("init_from")
    if parent:  # recorded by step 2's --init_from (step2.init_from)
        lines += ["", f"Fine-tuned from `{parent}`: step 2 started from that model's weights."]
    lines += ["", "## Usage", "", "```python",
              f"from twostep_asteroid import {name}",
              "",
              f'model = {name}.from_pretrained("{repo_id or "<org>/<name>"}")',
              f"sources = model(mixture)  # [batch, time] at {_fmt(sample_rate)} Hz -> [batch, n_src, time]",
              "```", "", "From the command line (any length, any sample rate: resampled and chunked):", "",
              "```bash", f"twostep-separate mixture.wav --model {repo_id or '<org>/<name>'} --out_dir separated/",
              "```", ""]
    lines += ["## Model", "", "| Argument | Value |", "|---|---|"]
    lines += [f"| `{k}` | {_fmt(v)} |" for k, v in args.items()]
    n_params = sum(int(t.numel()) for t in conf.get("state_dict", {}).values() if hasattr(t, "numel"))
    if n_params:
        lines.append(f"| parameters | {n_params / 1e6:.2f} M |")
    lines.append("")
    if results and extra_sets:
        on = f" on {', '.join(datasets)}" if datasets else ""
        names = list(extra_sets)
        lines += ["## Results", "", f"Test-set results{on}: `seen` holds other utterances of the training "
                  f"speakers; {', '.join(f'`{n}`' for n in names)} speakers that are in no training or "
                  "validation mixture (what a recording of your own voice gets).", "",
                  "| Metric | seen | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
        for k, v in results.items():
            cells = [_fmt(extra_sets[n][k]) if k in extra_sets[n] else "—" for n in names]
            lines.append(f"| {METRIC_NAMES.get(k, k)} | {_fmt(v)} | " + " | ".join(cells) + " |")
        lines.append("")
    elif results:
        on = f" on {', '.join(datasets)}" if datasets else ""
        lines += ["## Results", "", f"Test-set results{on}:", "", "| Metric | Value |", "|---|---|"]
        lines += [f"| {METRIC_NAMES.get(k, k)} | {_fmt(v)} |" for k, v in results.items()]
        lines.append("")
    infos = dict(extra_infos or {})
    noise = infos.pop("training_noise", None)
    data_licenses = infos.get("data_licenses") if isinstance(infos.get("data_licenses"), dict) else None
    infos = {k: v for k, v in infos.items() if isinstance(v, (str, int, float, bool))}
    if data_licenses:
        lines += ["## Training data", "", "The speakers the weights were trained on, with the licence of "
                  "their recordings:", "", "| Speaker | Licence |", "|---|---|"]
        lines += [f"| {name} | {lic or 'unknown'} |" for name, lic in data_licenses.items()]
        lines.append("")
    versions = conf.get("infos", {}).get("software_versions", {})
    if noise:  # data.noise: the noisy variant of the corpus
        from .data.mixing import noise_label

        infos = {"training mixtures": f"with added noise: {noise_label(noise)} (`data.noise`; new noise at "
                                      "every epoch, the targets are the clean speakers)", **infos}
    if infos or versions:
        lines += ["## Training", "", "| | |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in {**infos, **versions}.items()]
        lines.append("")
    if license == "other":
        lines += ["## License", "", "No single licence id covers the training recordings: their licences "
                  "differ (e.g. GPL-2.0-only beside Creative Commons share-alike ones; each is listed under "
                  "Training data above and in the corpus's LICENSES.md), or the corpus states none (for "
                  "your own recordings, `--license` of the corpus builder records it). Check them before "
                  "redistributing these weights.", ""]
    else:
        lines += ["## License", "", f"The weights are released under `{license}`."
                  + (" Check the licence of the training data as well." if datasets else ""), ""]
    lines += ["## Citation", "", "```bibtex", _CITATION, "```", ""]
    return "\n".join(lines)


def training_noise(conf_path):
    """The noise a run added to its training mixtures, from its ``conf.yml`` (``data.noise``,
    ``data.noise_snr_db``): ``{"color": "pink", "snr_db": [0.0, 10.0]}``, or None (clean, no such
    file, or a conf from before ``data.noise``)."""
    from .config import load_config  # the one source of the defaults (an old conf: no noise)
    from .data.mixing import noise_record

    if not conf_path or not Path(conf_path).is_file():
        return None
    data = load_config(conf_path)["data"]
    return noise_record(data["noise"], data["noise_snr_db"])


def package_for_hub(model, out_dir, results=None, dataset_name=None, license="cc-by-sa-4.0",
                    extra_infos=None, repo_id=None, description=None):
    """Write a folder ready for the Hub: ``config.json``, ``model.safetensors`` and ``README.md``.

    The three files are written into a temporary folder beside ``out_dir`` and only then moved in,
    each with ``os.replace``, the card last: an interrupted call never leaves a truncated file, and
    a folder with a ``README.md`` is complete.

    Args:
        model: A model with ``serialize()``.
        out_dir (str or Path): The folder (created; existing files of the same names are replaced).
        results (dict, optional): Metrics for the card and ``config["infos"]["results"]``.
        dataset_name (str or list, optional), license (str), repo_id (str, optional),
        description (str, optional): See :func:`model_card`.
        extra_infos (dict, optional): Merged into ``config["infos"]`` and listed in the card.

    Returns:
        pathlib.Path: ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    infos = dict(extra_infos or {})
    if results:
        infos["results"] = dict(results)
    if dataset_name:
        infos["dataset"] = dataset_name
    infos["license"] = license
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        save_pretrained(model, staging, infos)
        conf = load_config_and_weights(staging / CONFIG_NAME, staging / WEIGHTS_NAME)
        card = model_card(conf, results=results, dataset_name=dataset_name, license=license,
                          repo_id=repo_id, extra_infos=extra_infos, description=description)
        (staging / "README.md").write_text(card, encoding="utf-8")
        for name in (WEIGHTS_NAME, CONFIG_NAME, "README.md"):
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


class MissingTokenError(RuntimeError):
    """No Hugging Face token to upload with."""


def _find_token(token=None):
    if token:
        return token
    env = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if env and env.strip():
        return env.strip()
    from huggingface_hub import constants

    try:
        stored = Path(constants.HF_TOKEN_PATH).read_text().strip()
    except OSError:
        stored = ""
    return stored or None


def upload_to_hub(folder, repo_id, token=None, private=False, commit_message=None):
    """Upload a folder written by :func:`package_for_hub` to ``repo_id`` on the Hub.

    Uses ``HfApi.create_repo(exist_ok=True)`` then ``HfApi.upload_folder``. The token is ``token``,
    else ``HF_TOKEN``, else the one saved by ``hf auth login``; without one, nothing is sent and
    :class:`MissingTokenError` says how to proceed.

    Returns:
        The ``CommitInfo`` of the upload.
    """
    folder = Path(folder)
    missing = [n for n in (CONFIG_NAME, WEIGHTS_NAME, "README.md") if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {missing}: write it with twostep_asteroid.hub.package_for_hub first.")
    token = _find_token(token)
    if not token:
        raise MissingTokenError(
            f"No Hugging Face token, so {folder} was not uploaded to {repo_id}. Either pass "
            "token=... (a write token from https://huggingface.co/settings/tokens), set the HF_TOKEN "
            "environment variable, or run `hf auth login` once; or upload it yourself with "
            f"`hf upload {repo_id} {folder} .`."
        )
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    return api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                             commit_message=commit_message or "Upload TwoStep model (twostep-asteroid)")


def _hub_license_id(text):
    """A licence as written in a corpus (``"CC BY-NC 3.0"``, ``"CC-BY-SA-3.0"``) as a Hub id
    (``cc-by-nc-3.0``, ``cc-by-sa-3.0``)."""
    return "-".join(text.lower().replace("-", " ").split())


def corpus_card_infos(data_dir):
    """Dataset name, licence and licence notes of a corpus folder, for the model card.

    The licence comes from the training speakers' licences in ``corpus.json`` (the embedded corpus,
    ``--audio_dir --license``), else from its corpus-wide ``licenses`` (ESC-50); a corpus that states
    none gets ``other``, never a licence it did not give. wsj0-2mix has no ``corpus.json``.
    """
    corpus_json = Path(data_dir) / "corpus.json" if data_dir else None
    if corpus_json is None or not corpus_json.is_file():
        return {"dataset_name": "wsj0-2mix", "license": "cc-by-sa-4.0", "data_licenses": None}
    corpus = json.loads(corpus_json.read_text())
    name = corpus.get("name", Path(data_dir).name)
    speakers = corpus.get("speakers", {})
    # The weights are trained on the training voices only (held-out test voices do not count).
    trained_on = corpus.get("train_speakers") or list(speakers)
    per_source = {n: speakers[n].get("license") for n in sorted(trained_on) if n in speakers}
    licenses = sorted({str(lic) for lic in per_source.values() if lic})
    if not licenses:  # no per-speaker licences: the corpus-wide ones (ESC-50), if any
        licenses = sorted({str(e["license"]) for e in corpus.get("licenses", []) if e.get("license")})
        per_source = {name: ", ".join(licenses)} if licenses else per_source
    if not licenses or any("GPL" in lic.upper() for lic in licenses):
        # Unknown, or GPL-2.0-only recordings beside CC-BY-SA ones: no single licence id fits.
        license = "other"
    elif len(licenses) == 1:
        license = _hub_license_id(licenses[0])
    elif any("NC" in lic.upper().replace("-", " ").split() for lic in licenses):
        license = "other"
    elif any("SA" in lic.upper() for lic in licenses):
        # A model trained on share-alike data is distributed under the share-alike licence.
        license = "cc-by-sa-3.0"
    else:
        license = "cc-by-3.0"
    return {"dataset_name": name, "license": license, "data_licenses": per_source or None}


def main(argv=None):
    """``python -m twostep_asteroid.hub package --model best_model.pth --out_dir exp/tag/hub [...]``."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="Package a trained TwoStep model for the Hub, and upload it.")
    sub = parser.add_subparsers(dest="command", required=True)
    pkg = sub.add_parser("package", help="write config.json, model.safetensors and the model card")
    pkg.add_argument("--model", required=True, help=f"{BEST_MODEL_NAME} of step 2 (or any from_pretrained source)")
    pkg.add_argument("--out_dir", required=True)
    pkg.add_argument("--results", help="results.json of the evaluation stage")
    pkg.add_argument("--data_dir", help="the corpus folder (its corpus.json gives dataset and licences)")
    pkg.add_argument("--conf", help="the run's conf.yml, for the training noise (data.noise) the card states; "
                     "default: the conf.yml beside --model, as training writes it")
    pkg.add_argument("--repo_id", help="upload to this Hub repo when a token is available")
    args = parser.parse_args(argv)

    from .models import load_separator

    model = load_separator(args.model)
    results = json.loads(Path(args.results).read_text()) if args.results and Path(args.results).is_file() else None
    infos = corpus_card_infos(args.data_dir)
    extra = {"data_licenses": infos["data_licenses"]} if infos["data_licenses"] else {}
    beside = Path(args.model).with_name("conf.yml") if Path(args.model).is_file() else None
    noise = training_noise(args.conf or beside)
    if noise:
        extra["training_noise"] = noise
    folder = package_for_hub(model, args.out_dir, results=results, dataset_name=infos["dataset_name"],
                             license=infos["license"], extra_infos=extra or None, repo_id=args.repo_id)
    print(f"Hub-ready folder: {folder} (config.json, model.safetensors, README.md)")
    if not args.repo_id:
        print(f"To share it: `hf upload <org>/<name> {folder} .`, or rerun this command with "
              "--repo_id <org>/<name> and HF_TOKEN set.")
        return 0
    try:
        info = upload_to_hub(folder, args.repo_id)
    except MissingTokenError:
        # The upload was asked for and did not happen: that is a failure, not a notice.
        print(f"error: no Hugging Face token, so {folder} was packaged but NOT uploaded to {args.repo_id}. "
              "Set HF_TOKEN to a write token (https://huggingface.co/settings/tokens) or run `hf auth login`, "
              f"then rerun this command with --repo_id {args.repo_id}; or upload the folder yourself with "
              f"`hf upload {args.repo_id} {folder} .`.", file=sys.stderr)
        return 2
    print(f"Uploaded to {getattr(info, 'commit_url', args.repo_id)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
