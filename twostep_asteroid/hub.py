"""Loading and saving TwoStep models: local files and folders, Hugging Face Hub ids and URLs.

Safe by default: weights are read from safetensors with a JSON config, or from a torch file with
``torch.load(weights_only=True)``. Nothing that needs code execution to load is ever unpickled.
"""
import json
import os
import re
from pathlib import Path

import torch

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TORCH_WEIGHTS_NAMES = ("model.pth", "pytorch_model.bin")
_HUB_URL = re.compile(r"^https?://(?:www\.)?huggingface\.co/(?P<repo>[^/@\s]+/[^/@\s]+?)"
                      r"(?:/(?:tree|resolve|blob)/(?P<rev>[^/\s]+))?/?$")
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
    for pattern in (_HUB_URL, _HUB_ID):
        match = pattern.match(source.strip())
        if match:
            return match.group("repo"), match.group("rev")
    return None


def _download(repo_id, revision):
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError

    def fetch(filename):
        return hf_hub_download(repo_id, filename, revision=revision)

    try:
        config_path = fetch(CONFIG_NAME)
        try:
            fetch(WEIGHTS_NAME)
            return _load_folder(Path(config_path).parent)
        except EntryNotFoundError:
            for name in TORCH_WEIGHTS_NAMES:
                try:
                    return _load_file(fetch(name))
                except EntryNotFoundError:
                    continue
            raise FileNotFoundError(f"Hub repo {repo_id} has no {WEIGHTS_NAME} nor {TORCH_WEIGHTS_NAMES}.")
    except LocalEntryNotFoundError as err:
        at = f"@{revision}" if revision else ""
        raise OSError(
            f"Model {repo_id}{at} is not in the local Hugging Face cache "
            f"({os.environ.get('HF_HUB_CACHE') or os.environ.get('HF_HOME') or '~/.cache/huggingface'}) "
            "and the Hub cannot be reached (HF_HUB_OFFLINE is set or there is no network). Run once "
            f"online: `huggingface-cli download {repo_id}`, or pass a local folder/file instead."
        ) from err


def load_model_conf(source):
    """Load a serialized model (``model_name``, ``model_args``, ``state_dict``) from any source.

    Args:
        source (dict or str or os.PathLike): a serialized dict, a local ``.pth``/``.safetensors``
            file, a folder written by :func:`save_pretrained`, a Hub id ``org/name[@revision]`` or
            a URL ``https://huggingface.co/org/name[/tree/revision]``.

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
        parsed = parse_hub_source(str(source))
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
    tmp_weights = folder / (WEIGHTS_NAME + ".tmp")
    save_file(state_dict, str(tmp_weights))
    os.replace(tmp_weights, folder / WEIGHTS_NAME)
    tmp_conf = folder / (CONFIG_NAME + ".tmp")
    tmp_conf.write_text(json.dumps(conf, indent=2, sort_keys=True))
    os.replace(tmp_conf, folder / CONFIG_NAME)
    return folder
