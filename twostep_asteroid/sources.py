"""Where a model comes from: resolve a ``from_pretrained`` source to a serialized model.

A source is a serialized dict, a local file or folder (read by :mod:`twostep_asteroid.serialization`),
a Hugging Face Hub id ``org/name[@revision]`` or an ``https://huggingface.co/...`` URL. Hub files
go through ``hf_hub_download`` and its cache, so ``HF_HUB_OFFLINE=1`` works for cached models; a
cached file is checked against its content hash before it is loaded (:func:`check_cached_file`),
and a model that is neither cached nor reachable raises :class:`HubModelNotCachedError`, whose
message says how to fetch it.

:func:`load_model_conf` is what ``from_pretrained``, :func:`~twostep_asteroid.models.load_separator`
and :func:`~twostep_asteroid.inference.load_model` call.
"""
import hashlib
import json
import os
import re
from pathlib import Path

from .serialization import (CONFIG_NAME, TORCH_WEIGHTS_NAMES, WEIGHTS_NAME, load_config_and_weights,
                            load_local, torch_load_safe)

_HUB_URL = re.compile(r"^https?://(?:www\.)?huggingface\.co/(?P<repo>[^/@\s]+/[^/@\s]+?)"
                      r"(?:/(?:tree|resolve|blob)/(?P<rev>[^/\s]+))?/?$")
_HUB_FILE_URL = re.compile(r"^https?://(?:www\.)?huggingface\.co/(?P<repo>[^/@\s]+/[^/@\s]+?)"
                           r"/(?:resolve|blob)/(?P<rev>[^/\s]+)/(?P<file>[^\s?#]+?)(?:\?[^\s]*)?$")
_HUB_ID = re.compile(r"^(?P<repo>[\w.\-]+/[\w.\-]+)(?:@(?P<rev>[\w.\-/]+))?$")


def parse_hub_source(source):
    """Split a Hub id or URL into what ``hf_hub_download`` needs.

    Args:
        source (str): ``org/name``, ``org/name@revision`` (branch, tag or commit sha),
            ``https://huggingface.co/org/name``, ``.../tree/<revision>``, or a file URL
            ``.../resolve/<revision>/<file>`` or ``.../blob/<revision>/<file>``.

    Returns:
        tuple or None: ``(repo_id, revision, filename)`` (``revision`` and ``filename`` ``None``
        when not given), or ``None`` when ``source`` is neither a Hub id nor a Hub URL.
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


def _hexdigest(path, digest):
    """``digest`` (a ``hashlib`` object) updated with the content of ``path``, read in blocks."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _git_blob_sha1(path):
    """Git's blob id of a file: sha1 of ``"blob <size>\\0"`` followed by the content."""
    return _hexdigest(path, hashlib.sha1(f"blob {os.path.getsize(path)}\0".encode()))


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
            actual, kind = _hexdigest(real, hashlib.sha256()), "sha256"
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


def download_model_conf(repo_id, revision=None, filename=None):
    """Fetch a model through ``hf_hub_download`` (the cache first when offline) and load it.

    Args:
        repo_id (str): ``org/name``.
        revision (str, optional): Branch, tag or commit sha; default the main branch.
        filename (str, optional): The one file to load (a file URL named it). Default: try
            ``config.json`` + ``model.safetensors``, then ``model.pth``, ``pytorch_model.bin``
            (Asteroid's Hub layout).

    Returns:
        dict: The serialized model.

    Raises:
        HubModelNotCachedError: Not cached, and the Hub cannot be reached.
        HubCacheCorruptError: A cached file is truncated or altered.
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
                return load_config_and_weights(config_path, weights_path)
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
            file, a folder written by :func:`~twostep_asteroid.serialization.save_pretrained`, a Hub
            id ``org/name[@revision]`` (branch, tag or commit sha) or a URL ``https://huggingface.co/org/name[/tree/revision]``
            or ``.../resolve/<revision>/<file>``. Local files are read by
            :func:`~twostep_asteroid.serialization.load_local`; Hub files go through
            :func:`download_model_conf` (``hf_hub_download`` and its cache, so
            ``HF_HUB_OFFLINE=1`` works with a cached model).

    Raises:
        HubModelNotCachedError: A Hub model that is not cached while the Hub is unreachable.
        HubCacheCorruptError: A cached Hub file that is truncated or altered (see :func:`check_cached_file`).
        ~twostep_asteroid.serialization.UnsafeCheckpointError: A torch file that would need code
            execution to load.

    Returns:
        dict: The serialized model.
    """
    if isinstance(source, dict):
        conf = source
    elif os.path.isdir(source) or os.path.isfile(source):
        conf = load_local(source)
    else:
        parsed = parse_hub_source(str(source))
        if parsed is None:
            raise FileNotFoundError(
                f"{source!r} is neither a local file or folder nor a Hub id (org/name[@revision]) "
                "or https://huggingface.co/org/name URL."
            )
        conf = download_model_conf(*parsed)
    missing = [k for k in ("model_name", "model_args", "state_dict") if k not in conf]
    if missing:
        raise ValueError(f"{source if not isinstance(source, dict) else 'The model dict'} is not a "
                         f"serialized TwoStep model: missing {missing}.")
    return conf
