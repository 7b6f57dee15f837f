"""Loading and saving TwoStep models: local files and folders, Hugging Face Hub ids and URLs.

Safe by default: weights are read from safetensors with a JSON config, or from a torch file with
``torch.load(weights_only=True)``. Nothing that needs code execution to load is ever unpickled.

* :func:`load_model_conf`: dict, file, folder, ``org/name[@revision]``, ``https://huggingface.co/...``
  (through ``hf_hub_download`` and its cache, so ``HF_HUB_OFFLINE=1`` works for cached models);
* :func:`save_pretrained`: ``config.json`` + ``model.safetensors``;
* :func:`model_card`, :func:`package_for_hub`, :func:`upload_to_hub`: share a model on the Hub.
"""
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch

from .fileio import atomic_write, atomic_write_json

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TORCH_WEIGHTS_NAMES = ("model.pth", "pytorch_model.bin")
_HUB_URL = re.compile(r"^https?://(?:www\.)?huggingface\.co/(?P<repo>[^/@\s]+/[^/@\s]+?)"
                      r"(?:/(?:tree|resolve|blob)/(?P<rev>[^/\s]+))?/?$")
_HUB_FILE_URL = re.compile(r"^https?://(?:www\.)?huggingface\.co/(?P<repo>[^/@\s]+/[^/@\s]+?)"
                           r"/(?:resolve|blob)/(?P<rev>[^/\s]+)/(?P<file>[^\s?#]+?)(?:\?[^\s]*)?$")
_HUB_ID = re.compile(r"^(?P<repo>[\w.\-]+/[\w.\-]+)(?:@(?P<rev>[\w.\-/]+))?$")


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint that would need arbitrary code execution to load."""


def torch_load_safe(path):
    """``torch.load(path, weights_only=True)``, with an error that says what to do when refused."""
    # asteroid 0.7's own serialize() stores torch.__version__ as a TorchVersion (a str subclass):
    # allowing that one class keeps Asteroid-written checkpoints loadable without unpickling code.
    from torch.torch_version import TorchVersion

    try:
        with torch.serialization.safe_globals([TorchVersion]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError (or RuntimeError) for forbidden globals
        if "weights_only" in str(err) or "Unsupported global" in str(err) or "Unpickl" in type(err).__name__:
            raise UnsafeCheckpointError(
                f"Refusing to load {path}: it holds Python objects that need code execution to "
                "unpickle. Only tensors and plain types are accepted. If you trust the file, convert it "
                "once with `torch.load(path, weights_only=False)` and re-save it with "
                "`twostep_asteroid.hub.save_pretrained`."
            ) from err
        raise


def _load_folder(folder):
    folder = Path(folder)
    config_path = folder / CONFIG_NAME
    weights = folder / WEIGHTS_NAME
    if config_path.is_file() and weights.is_file():
        from safetensors.torch import load_file

        conf = json.loads(config_path.read_text())
        conf["state_dict"] = load_file(str(weights))
        return conf
    for name in TORCH_WEIGHTS_NAMES:
        if (folder / name).is_file():
            return _load_file(folder / name)
    raise FileNotFoundError(
        f"{folder} holds no model: expected {CONFIG_NAME} + {WEIGHTS_NAME} "
        f"(written by twostep_asteroid.hub.save_pretrained) or one of {TORCH_WEIGHTS_NAMES}."
    )


def _load_file(path):
    path = Path(path)
    if path.suffix == ".safetensors":
        return _load_folder(path.parent) if path.name == WEIGHTS_NAME else _load_safetensors_alone(path)
    return torch_load_safe(path)


def _load_safetensors_alone(path):
    config_path = path.with_name(CONFIG_NAME)
    if not config_path.is_file():
        raise FileNotFoundError(f"{path} needs its {CONFIG_NAME} beside it to be rebuilt.")
    from safetensors.torch import load_file

    conf = json.loads(config_path.read_text())
    conf["state_dict"] = load_file(str(path))
    return conf


def parse_hub_source(source):
    """Return ``(repo_id, revision)`` for a Hub id or URL, or ``None`` when it is neither."""
    parsed = parse_hub_source_full(source)
    return None if parsed is None else parsed[:2]


def parse_hub_source_full(source):
    """Return ``(repo_id, revision, filename)`` for a Hub id or URL, or ``None``.

    Accepted forms: ``org/name``, ``org/name@revision`` (branch, tag or commit sha),
    ``https://huggingface.co/org/name``, ``.../tree/<revision>`` and a file URL
    ``.../resolve/<revision>/<file>`` or ``.../blob/<revision>/<file>`` (``filename`` is then that
    file, else ``None``).
    """
    source = source.strip()
    match = _HUB_FILE_URL.match(source)
    if match:
        return match.group("repo"), match.group("rev"), match.group("file")
    for pattern in (_HUB_URL, _HUB_ID):
        match = pattern.match(source)
        if match:
            return match.group("repo"), match.group("rev"), None
    return None


class HubModelNotCachedError(OSError):
    """A Hub model that is neither in the local cache nor reachable (offline or no network)."""


class HubCacheCorruptError(OSError):
    """A cached Hub file whose content does not match what the cache says it is (truncated or
    altered: an interrupted copy of the cache, a full disk, a crash while it was written)."""


def _git_blob_sha1(path):
    import hashlib

    h = hashlib.sha1(f"blob {os.path.getsize(path)}\0".encode())
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _safetensors_expected_size(path):
    """Size a safetensors file must have according to its own header, or ``None`` if the header
    itself is cut or unreadable (then the file is damaged anyway)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return None
        n = int.from_bytes(head, "little")
        try:
            header = json.loads(f.read(n))
        except ValueError:
            return None
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    return 8 + n + max(ends, default=0)


def check_cached_file(path, repo_id, filename):
    """Check a file returned by ``hf_hub_download`` before it is loaded.

    In the huggingface_hub cache, ``snapshots/<commit>/<file>`` links to ``blobs/<name>``, where
    ``<name>`` is the file's sha256 (LFS files: weights) or its git blob sha1 (small files): the
    content is hashed and compared with that name. A safetensors file is also checked against
    the length its header gives, wherever it lies.

    Raises:
        HubCacheCorruptError: The file is truncated or altered; the message names it and says how
            to remove it from the cache.
    """
    import hashlib

    real = Path(os.path.realpath(path))
    problem = None
    if real.suffix == ".safetensors" or str(filename).endswith(".safetensors"):
        expected = _safetensors_expected_size(real)
        size = real.stat().st_size
        if expected is None or size != expected:
            problem = (f"{size} bytes, its safetensors header "
                       + ("is cut or unreadable" if expected is None else f"says {expected}"))
    name = real.name
    if problem is None and real.parent.name == "blobs" and re.fullmatch(r"[0-9a-f]{64}|[0-9a-f]{40}", name):
        if len(name) == 64:
            digest = hashlib.sha256()
            with open(real, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            actual, kind = digest.hexdigest(), "sha256"
        else:
            actual, kind = _git_blob_sha1(real), "git sha1"
        if actual != name:
            problem = f"{real.stat().st_size} bytes whose {kind} is {actual}, not {name} as the cache records"
    if problem is None:
        return
    repo_folder = real.parent.parent if real.parent.name == "blobs" else None
    rm = f"`rm -rf {repo_folder}`" if repo_folder is not None else f"`rm {real}`"
    raise HubCacheCorruptError(
        f"{filename} of {repo_id} in the Hugging Face cache is incomplete or corrupt: {real} holds {problem} "
        f"(an interrupted download or copy of the cache?). Nothing was loaded. Remove it from the cache with "
        f"`hf cache rm model/{repo_id}` (or {rm}), then download it again: `hf download {repo_id}`.")


def _hub_cache_dir():
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _not_cached_error(repo_id, revision, err):
    at = f"@{revision}" if revision else ""
    rev_opt = f" --revision {revision}" if revision else ""
    return HubModelNotCachedError(
        f"Model {repo_id}{at} is not in the local Hugging Face cache ({_hub_cache_dir()}) and the Hub "
        "cannot be reached (HF_HUB_OFFLINE is set, or there is no network). To fix it, download it "
        f"once while online: `hf download {repo_id}{rev_opt}` (or `huggingface-cli download "
        f"{repo_id}{rev_opt}`), or point HF_HUB_CACHE/HF_HOME at a cache that holds it, or pass a "
        "local folder or file instead. Without network, set HF_HUB_OFFLINE=1 to skip the retries. "
        "(If you meant a local path, it does not exist.)"
    )


def _download(repo_id, revision, filename=None):
    """Fetch a model through ``hf_hub_download`` (the cache first when offline) and load it.

    Tries ``config.json`` + ``model.safetensors``, then ``model.pth``, ``pytorch_model.bin``
    (Asteroid's Hub layout), or only ``filename`` when a file URL named one.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError

    not_cached = None

    def fetch(name):
        # After a first "not cached and unreachable" answer, look only in the cache: the Hub is
        # offline or unreachable, and each online try would retry for tens of seconds.
        path = hf_hub_download(repo_id, name, revision=revision, local_files_only=not_cached is not None)
        check_cached_file(path, repo_id, name)
        return path

    if filename is not None:
        names = [filename]
    else:
        names = [WEIGHTS_NAME, *TORCH_WEIGHTS_NAMES]
    for name in names:
        try:
            if name.endswith(".safetensors"):
                config_path = fetch(str(Path(name).with_name(CONFIG_NAME)) if "/" in name else CONFIG_NAME)
                weights_path = fetch(name)
                conf = json.loads(Path(config_path).read_text())
                from safetensors.torch import load_file

                conf["state_dict"] = load_file(weights_path)
                return conf
            return torch_load_safe(fetch(name))
        except LocalEntryNotFoundError as err:  # a subclass of EntryNotFoundError: test it first
            not_cached = not_cached or err
        except EntryNotFoundError:  # the repo really has no such file: try the next layout
            continue
    if not_cached is not None:
        raise _not_cached_error(repo_id, revision, not_cached) from not_cached
    raise FileNotFoundError(f"Hub repo {repo_id}{'@' + revision if revision else ''} has none of "
                            f"{[CONFIG_NAME + ' + ' + WEIGHTS_NAME, *TORCH_WEIGHTS_NAMES] if filename is None else [filename]}.")


def load_model_conf(source):
    """Load a serialized model (``model_name``, ``model_args``, ``state_dict``) from any source.

    Args:
        source (dict or str or os.PathLike): a serialized dict, a local ``.pth``/``.safetensors``
            file, a folder written by :func:`save_pretrained`, a Hub id ``org/name[@revision]``
            (branch, tag or commit sha) or a URL ``https://huggingface.co/org/name[/tree/revision]``
            or ``.../resolve/<revision>/<file>``. Hub files go through ``hf_hub_download`` and
            its cache, so ``HF_HUB_OFFLINE=1`` works with a cached model.

    Raises:
        HubModelNotCachedError: A Hub model that is not cached while the Hub is unreachable.
        HubCacheCorruptError: A cached Hub file that is truncated or altered (see :func:`check_cached_file`).
        UnsafeCheckpointError: A torch file that would need code execution to load.

    Returns:
        dict: The serialized model.
    """
    if isinstance(source, dict):
        conf = source
    elif os.path.isdir(source):
        conf = _load_folder(source)
    elif os.path.isfile(source):
        conf = _load_file(source)
    else:
        parsed = parse_hub_source_full(str(source))
        if parsed is None:
            raise FileNotFoundError(
                f"{source!r} is neither a local file or folder nor a Hub id (org/name[@revision]) "
                "or https://huggingface.co/org/name URL."
            )
        conf = _download(*parsed)
    missing = [k for k in ("model_name", "model_args", "state_dict") if k not in conf]
    if missing:
        raise ValueError(f"{source if not isinstance(source, dict) else 'The model dict'} is not a "
                         f"serialized TwoStep model: missing {missing}.")
    return conf


def save_pretrained(model, folder, extra_infos=None):
    """Write ``config.json`` + ``model.safetensors`` for ``model`` into ``folder``.

    Args:
        model: A model with ``serialize()`` (:class:`~twostep_asteroid.models.TwoStepTDCN`,
            :class:`~twostep_asteroid.models.TwoStepFrontEnd`).
        folder (str or os.PathLike): Output folder (created).
        extra_infos (dict, optional): Merged into ``config["infos"]`` (e.g. results, data licence).

    Returns:
        pathlib.Path: The folder.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    conf = model.serialize()
    state_dict = {k: v.contiguous() for k, v in conf.pop("state_dict").items()}
    conf["infos"].update(extra_infos or {})
    atomic_write(folder / WEIGHTS_NAME, lambda tmp: save_file(state_dict, str(tmp)))
    atomic_write_json(folder / CONFIG_NAME, conf, sort_keys=True)
    return folder


# ---------------------------------------------------------------------------------------------
# Sharing on the Hub: model card, package, upload
# ---------------------------------------------------------------------------------------------
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
        "front end trained first on ideal latent targets, then frozen under a TDCN separator. "
        "Needs the `twostep-asteroid` package (an Asteroid plugin) to load."))
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
    data_licenses = infos.get("data_licenses") if isinstance(infos.get("data_licenses"), dict) else None
    infos = {k: v for k, v in infos.items() if isinstance(v, (str, int, float, bool))}
    if data_licenses:
        lines += ["## Training data", "", "The speakers the weights were trained on, with the licence of "
                  "their recordings:", "", "| Speaker | Licence |", "|---|---|"]
        lines += [f"| {name} | {lic or 'unknown'} |" for name, lic in data_licenses.items()]
        lines.append("")
    versions = conf.get("infos", {}).get("software_versions", {})
    if infos or versions:
        lines += ["## Training", "", "| | |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in {**infos, **versions}.items()]
        lines.append("")
    if license == "other":
        lines += ["## License", "", "The training recordings carry licences that no single licence id "
                  "covers (GPL-2.0-only beside Creative Commons share-alike ones; each speaker's is listed "
                  "under Training data above and in the corpus's LICENSES.md). Check them before "
                  "redistributing these weights.", ""]
    else:
        lines += ["## License", "", f"The weights are released under `{license}`."
                  + (" Check the licence of the training data as well." if datasets else ""), ""]
    lines += ["## Citation", "", "```bibtex", _CITATION, "```", ""]
    return "\n".join(lines)


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
        conf = json.loads((staging / CONFIG_NAME).read_text())
        from safetensors.torch import load_file

        conf["state_dict"] = load_file(str(staging / WEIGHTS_NAME))
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


def corpus_card_infos(data_dir):
    """Dataset name, licence and licence notes of a corpus folder, for the model card.

    The embedded corpus writes ``corpus.json`` (speakers with their licences); wsj0-2mix has none.
    """
    corpus_json = Path(data_dir) / "corpus.json" if data_dir else None
    if corpus_json is None or not corpus_json.is_file():
        return {"dataset_name": "wsj0-2mix", "license": "cc-by-sa-4.0", "data_licenses": None}
    corpus = json.loads(corpus_json.read_text())
    speakers = corpus.get("speakers", {})
    # The weights are trained on the training voices only (held-out test voices do not count).
    trained_on = corpus.get("train_speakers") or list(speakers)
    licenses = sorted({str(speakers[n].get("license")) for n in trained_on if n in speakers and speakers[n].get("license")})
    if any("GPL" in lic.upper() for lic in licenses):
        # GPL-2.0-only recordings beside CC-BY-SA ones: no single licence id fits; the card says so.
        license = "other"
    elif any("SA" in lic.upper() for lic in licenses):
        # A model trained on share-alike data is distributed under the share-alike licence.
        license = "cc-by-sa-3.0"
    else:
        license = "cc-by-3.0"
    return {"dataset_name": corpus.get("name", Path(data_dir).name), "license": license,
            "data_licenses": {n: speakers[n].get("license") for n in sorted(trained_on) if n in speakers}}


def main(argv=None):
    """``python -m twostep_asteroid.hub package --model best.pth --out_dir exp/tag/hub [...]``."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="Package a trained TwoStep model for the Hub, and upload it.")
    sub = parser.add_subparsers(dest="command", required=True)
    pkg = sub.add_parser("package", help="write config.json, model.safetensors and the model card")
    pkg.add_argument("--model", required=True, help="best.pth of step 2 (or any from_pretrained source)")
    pkg.add_argument("--out_dir", required=True)
    pkg.add_argument("--results", help="results.json of the evaluation stage")
    pkg.add_argument("--data_dir", help="the corpus folder (its corpus.json gives dataset and licences)")
    pkg.add_argument("--repo_id", help="upload to this Hub repo when a token is available")
    args = parser.parse_args(argv)

    from .models import load_separator

    model = load_separator(args.model)
    results = json.loads(Path(args.results).read_text()) if args.results and Path(args.results).is_file() else None
    infos = corpus_card_infos(args.data_dir)
    extra = {"data_licenses": infos["data_licenses"]} if infos["data_licenses"] else None
    folder = package_for_hub(model, args.out_dir, results=results, dataset_name=infos["dataset_name"],
                             license=infos["license"], extra_infos=extra, repo_id=args.repo_id)
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
