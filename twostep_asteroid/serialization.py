"""Safe local loading and saving of serialized models: the files a model is written to and read from.

A serialized model is the dict of :meth:`~twostep_asteroid.models.TwoStepTDCN.serialize`
(``model_name``, ``model_args``, ``state_dict``, ``infos``), stored either as ``config.json`` +
``model.safetensors`` (:func:`save_pretrained`) or as one torch file (training's
:data:`BEST_MODEL_NAME`, Asteroid's ``model.pth``/``pytorch_model.bin``). Nothing is ever unpickled
that needs code execution: safetensors hold tensors only, and torch files are read with
``torch.load(weights_only=True)`` (:func:`torch_load_safe`).

Where a model comes from (a Hub id, a URL, the Hugging Face cache) is :mod:`twostep_asteroid.sources`'s
business; this module only reads and writes local files.

``python -m twostep_asteroid.serialization best EXP_DIR`` prints :func:`best_model_path` (for the
recipe's shell scripts, which so share the name with the Python code).
"""
import json
from pathlib import Path

from .fileio import atomic_write, atomic_write_json

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TORCH_WEIGHTS_NAMES = ("model.pth", "pytorch_model.bin")

#: The best model a training run writes into its ``exp_dir`` (a torch file of ``serialize()``'s
#: dict): the name Asteroid's recipes use, so that their users find it where they expect it.
BEST_MODEL_NAME = "best_model.pth"
#: The name runs made before :data:`BEST_MODEL_NAME` wrote; :func:`best_model_path` still finds it.
OLD_BEST_MODEL_NAME = "best.pth"


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint that would need arbitrary code execution to load."""


def best_model_path(exp_dir):
    """The best model of the training run in ``exp_dir``.

    Args:
        exp_dir (str or Path): A training run's folder (``train step1/step2/step3 --exp_dir``).

    Returns:
        pathlib.Path: ``exp_dir/best_model.pth``; the ``best.pth`` of a run made before that name
        when only that one exists (so old runs still load and resume).
    """
    exp_dir = Path(exp_dir)
    path, old = exp_dir / BEST_MODEL_NAME, exp_dir / OLD_BEST_MODEL_NAME
    return old if old.is_file() and not path.is_file() else path


def torch_load_safe(path):
    """``torch.load(path, weights_only=True)``, with an error that says what to do when refused.

    Args:
        path (str or Path): A torch file of tensors and plain types.

    Returns:
        The loaded object, on CPU.

    Raises:
        UnsafeCheckpointError: The file holds Python objects that need code execution to unpickle.
    """
    import torch
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
                "`twostep_asteroid.serialization.save_pretrained`."
            ) from err
        raise


def load_config_and_weights(config_path, weights_path):
    """A serialized model from its two files: ``config.json`` and ``model.safetensors``.

    Args:
        config_path (str or Path): The JSON config (everything but the weights).
        weights_path (str or Path): The safetensors weights.

    Returns:
        dict: The config, with the weights under ``state_dict``.
    """
    from safetensors.torch import load_file

    conf = json.loads(Path(config_path).read_text())
    conf["state_dict"] = load_file(str(weights_path))
    return conf


def load_local(path):
    """A serialized model from a local file or folder.

    Args:
        path (str or Path): A folder written by :func:`save_pretrained` (or holding one of
            :data:`TORCH_WEIGHTS_NAMES`), a ``.safetensors`` file with its ``config.json`` beside it,
            or a torch file (read with :func:`torch_load_safe`).

    Returns:
        dict: The serialized model (not checked: see :func:`twostep_asteroid.sources.load_model_conf`).
    """
    path = Path(path)
    if path.is_dir():
        if (path / CONFIG_NAME).is_file() and (path / WEIGHTS_NAME).is_file():
            return load_config_and_weights(path / CONFIG_NAME, path / WEIGHTS_NAME)
        for name in TORCH_WEIGHTS_NAMES:
            if (path / name).is_file():
                return torch_load_safe(path / name)
        raise FileNotFoundError(
            f"{path} holds no model: expected {CONFIG_NAME} + {WEIGHTS_NAME} "
            f"(written by twostep_asteroid.serialization.save_pretrained) or one of {TORCH_WEIGHTS_NAMES}."
        )
    if path.suffix == ".safetensors":
        config_path = path.with_name(CONFIG_NAME)
        if path.name == WEIGHTS_NAME:
            return load_local(path.parent)
        if not config_path.is_file():
            raise FileNotFoundError(f"{path} needs its {CONFIG_NAME} beside it to be rebuilt.")
        return load_config_and_weights(config_path, path)
    return torch_load_safe(path)


def save_pretrained(model, folder, extra_infos=None):
    """Write ``config.json`` + ``model.safetensors`` for ``model`` into ``folder``, atomically each.

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


def main(argv=None):
    """``python -m twostep_asteroid.serialization best EXP_DIR``: print :func:`best_model_path`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m twostep_asteroid.serialization",
                                     description="Where a training run's best model is.")
    sub = parser.add_subparsers(dest="command", required=True)
    best = sub.add_parser("best", help=f"print EXP_DIR/{BEST_MODEL_NAME} (or an older run's {OLD_BEST_MODEL_NAME})")
    best.add_argument("exp_dir")
    args = parser.parse_args(argv)
    print(best_model_path(args.exp_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
