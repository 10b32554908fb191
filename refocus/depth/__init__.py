"""Depth models: the model catalogue (aliases the UI shows), and ``load_depth_model``.

``load_depth_model(spec)`` accepts a short alias from ``MODELS``, a Hugging Face hub repo id, or
a local directory. It reads the checkpoint's ``config.json`` and hands it to the backend that
understands it: our own Eigen network (``refocus.depth.eigen``) or any ``transformers``
depth-estimation architecture (``refocus.depth.hf``). torch and transformers are imported only
when a model is loaded, so listing the models is cheap.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from dataclasses import dataclass
from pathlib import Path

from refocus.depth.base import DepthModel, DepthResult, looks_like_path, resolve_device
from refocus.errors import RefocusError

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "DepthModel",
    "DepthResult",
    "ModelInfo",
    "checkpoints_dir",
    "download_command",
    "list_models",
    "load_depth_model",
    "model_info",
    "resolve_device",
]


@dataclass(frozen=True)
class ModelInfo:
    """One entry of the model table shown to users.

    Attributes:
        alias: short name accepted by ``load_depth_model`` and ``--depth-model``.
        source: hub repo id, or (``local``) a directory under ``checkpoints_dir()``.
        licence: licence of the weights (SPDX id where one exists).
        kind: ``"relative"`` (affine-invariant disparity) or ``"metric"`` (metres).
        description: one line for the UI.
        local: True when ``source`` is a directory, not a hub repo id.
    """

    alias: str
    source: str
    licence: str
    kind: str
    description: str
    local: bool = False


MODELS: dict[str, ModelInfo] = {
    info.alias: info
    for info in (
        ModelInfo(
            "depth-anything-v2-small",
            "depth-anything/Depth-Anything-V2-Small-hf",
            "Apache-2.0",
            "relative",
            "Depth Anything V2 Small (25M parameters): fast, good edges. The default.",
        ),
        ModelInfo(
            "depth-anything-v2-base",
            "depth-anything/Depth-Anything-V2-Base-hf",
            "CC-BY-NC-4.0",
            "relative",
            "Depth Anything V2 Base (98M): finer detail; non-commercial use only.",
        ),
        ModelInfo(
            "depth-anything-v2-large",
            "depth-anything/Depth-Anything-V2-Large-hf",
            "CC-BY-NC-4.0",
            "relative",
            "Depth Anything V2 Large (335M): best relative depth, slow on CPU; non-commercial use only.",
        ),
        ModelInfo(
            "dpt-large",
            "Intel/dpt-large",
            "Apache-2.0",
            "relative",
            "Intel DPT-Large (MiDaS 3.0, 343M): the classic ViT depth model.",
        ),
        ModelInfo(
            "depth-pro",
            "apple/DepthPro-hf",
            "apple-amlr (research only)",
            "metric",
            "Apple Depth Pro (952M): metric depth in metres and the focal length; research use only.",
        ),
        ModelInfo(
            "eigen",
            "eigen",
            "see the checkpoint's model card",
            "metric",
            "refocus's own Eigen network, trained with `python -m training.train` (local weights).",
            local=True,
        ),
    )
}

#: The model used when no spec is given: small, permissively licensed, good on CPU.
DEFAULT_MODEL = MODELS["depth-anything-v2-small"].source


def list_models() -> list[ModelInfo]:
    """The model table, default first: alias, source, licence, relative/metric, description."""
    return list(MODELS.values())


def model_info(spec: str) -> ModelInfo | None:
    """The catalogue entry of a model given by alias or by hub id, or None (another model)."""
    return MODELS.get(spec) or next((m for m in MODELS.values() if m.source == spec and not m.local), None)


def checkpoints_dir() -> Path:
    """Where local aliases (``eigen``) find their weights: ``$REFOCUS_CHECKPOINTS``, else ``./checkpoints``.

    Relative to the working directory, not to the package, so it means the same in a clone and
    after ``pip install``.
    """
    return Path(os.environ.get("REFOCUS_CHECKPOINTS") or "checkpoints").expanduser()


def download_command(repo_id: str) -> str:
    """The command that downloads ``repo_id`` into the local cache, for the installed huggingface_hub.

    huggingface_hub >= 0.34 installs the ``hf`` command; older versions only ``huggingface-cli``.
    Asking the installed distribution which console scripts it declares avoids guessing by version.
    """
    try:
        scripts = {ep.name for ep in importlib.metadata.distribution("huggingface_hub").entry_points}
    except importlib.metadata.PackageNotFoundError:
        scripts = set()
    if "hf" in scripts:
        return f"hf download {repo_id}"
    if "huggingface-cli" in scripts:
        return f"huggingface-cli download {repo_id}"
    return f"pip install huggingface_hub && hf download {repo_id}"


def load_depth_model(spec: str | None = None, device: str | None = None) -> DepthModel:
    """Load a depth model by alias, hub repo id or local directory.

    Args:
        spec: an alias from ``MODELS`` (e.g. ``"depth-anything-v2-small"``, ``"eigen"``), a hub
            repo id (e.g. ``"depth-anything/Depth-Anything-V2-Small-hf"``; read from the local
            Hugging Face cache, downloaded if missing unless ``HF_HUB_OFFLINE=1``), or a local
            directory holding ``config.json`` and the weights. Default: ``DEFAULT_MODEL``.
        device: ``None`` (CUDA if available, else CPU), ``"cpu"`` or ``"cuda[:N]"``.

    Returns:
        A model with ``predict(image) -> DepthResult`` and ``name``, ``licence``, ``device``.

    Raises:
        RefocusError: the model is neither cached nor downloadable, the directory is not a
            model, or the device is unavailable. The message says how to get the model.
    """
    spec = (spec or DEFAULT_MODEL).strip()
    info = model_info(spec)
    source = spec if info is None else info.source
    local_dir = _local_directory(spec, source, from_alias=info is not None and info.local)
    device = resolve_device(device)

    config = _read_config(spec, source, local_dir)
    location = str(local_dir) if local_dir is not None else source
    licence = info.licence if info is not None else _licence_from_card(source, local_dir)

    if _is_eigen(config):
        from refocus.depth.eigen import load_eigen_depth_model

        return load_eigen_depth_model(location, device)
    if "model_type" not in config:
        raise RefocusError(
            f"Depth model {spec!r}: the config.json of {location} has no 'model_type' and is not an Eigen "
            "checkpoint; expected a transformers depth-estimation model or an Eigen checkpoint."
        )

    from refocus.depth.hf import load_hf_depth_model

    try:
        return load_hf_depth_model(location, device, name=spec if info is None else info.source, licence=licence)
    except (OSError, ValueError) as error:
        raise RefocusError(_unavailable_message(spec, source, local_dir, error)) from None


def _local_directory(spec: str, source: str, *, from_alias: bool) -> Path | None:
    """The directory ``source`` names, or None when it is a hub repo id.

    An existing directory, or a spec that ``looks_like_path``, is a path; ``owner/name`` that is
    not an existing directory is a hub id. Local aliases (``from_alias``) are folders of
    ``checkpoints_dir()``.
    """
    path = checkpoints_dir() / source if from_alias else Path(source).expanduser()
    if path.is_dir():
        return path
    if from_alias:
        raise RefocusError(
            f"Depth model {spec!r} needs its weights in {path.absolute()}, which does not exist. Train them with "
            "`python -m training.train` (see checkpoints/README.md), set REFOCUS_CHECKPOINTS to the folder "
            "that holds them, or pass another model with `--depth-model`."
        )
    if looks_like_path(source):
        raise RefocusError(
            f"Depth model {spec!r}: no such directory ({path}). Pass a directory that holds a config.json and "
            "the weights (transformers format, or an Eigen checkpoint from `python -m training.train`)."
        )
    return None


def _read_config(spec: str, source: str, local_dir: Path | None) -> dict:
    """``config.json`` of a local directory or hub repo (from the cache, or downloaded)."""
    if local_dir is not None:
        path = local_dir / "config.json"
        if not path.is_file():
            raise RefocusError(
                f"Depth model {spec!r}: {local_dir} has no config.json, so it is not a model directory "
                "(expected transformers format from save_pretrained, or an Eigen checkpoint)."
            )
    else:
        from huggingface_hub import hf_hub_download

        try:
            path = Path(hf_hub_download(source, "config.json"))
        except (OSError, ValueError) as error:  # hub errors subclass these (offline, not found, bad id)
            raise RefocusError(_unavailable_message(spec, source, None, error)) from None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RefocusError(f"Depth model {spec!r}: cannot read {path}: {error}") from None
    if not isinstance(config, dict):
        raise RefocusError(f"Depth model {spec!r}: {path} does not hold a JSON object.")
    return config


def _is_eigen(config: dict) -> bool:
    """Whether ``config`` describes an Eigen checkpoint (asked of ``refocus.depth.eigen`` itself).

    Imported here, lazily, so a transformers model still loads if the Eigen module is missing
    or broken; a config that has a transformers ``model_type`` never needs it.
    """
    try:
        from refocus.depth.eigen import is_eigen_config
    except ImportError:
        return False
    return bool(is_eigen_config(config))


def _licence_from_card(source: str, local_dir: Path | None) -> str:
    """The ``license`` field of the model card (README.md front matter), where one is at hand."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.repocard import metadata_load

    if local_dir is not None:
        card = local_dir / "README.md"
    else:
        cached = try_to_load_from_cache(source, "README.md")
        card = Path(cached) if isinstance(cached, str) else None
    if card is None or not card.is_file():
        return "unknown (see the model card)"
    try:
        licence = (metadata_load(card) or {}).get("license")
    except Exception:  # a malformed card must not stop the model from loading
        return "unknown (see the model card)"
    return str(licence) if licence else "unknown (see the model card)"


def _unavailable_message(spec: str, source: str, local_dir: Path | None, error: Exception) -> str:
    """A user-facing sentence: which model is missing, why, and how to get it."""
    from huggingface_hub import constants
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError

    if local_dir is not None:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return (
            f"Depth model {spec!r} could not be loaded from {local_dir}: {reason}. The directory needs "
            "config.json, preprocessor_config.json and the weights (as written by save_pretrained)."
        )
    name = spec if spec == source else f"{spec} ({source})"
    if isinstance(error, HFValidationError):
        return (
            f"Depth model {spec!r} is neither a known alias ({', '.join(MODELS)}), an existing directory, "
            "nor a valid Hugging Face repo id (owner/name)."
        )
    if isinstance(error, GatedRepoError):
        reason = "the repository is gated: accept its terms on huggingface.co and log in with `hf auth login`"
    elif isinstance(error, RepositoryNotFoundError):
        reason = "the hub has no such public repository"
    elif constants.is_offline_mode():
        reason = "HF_HUB_OFFLINE is set, so only the local cache was searched"
    else:
        reason = "the Hugging Face hub could not be reached"
    return (
        f"Depth model {name} is not in the local Hugging Face cache and could not be downloaded: {reason}. "
        f"Download it on a machine with internet with `{download_command(source)}` (it lands in the Hugging "
        "Face cache; copy that cache over for offline use), or pass a local model directory with "
        "`--depth-model PATH`."
    )
