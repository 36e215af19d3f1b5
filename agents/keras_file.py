"""Read a Keras 3 `.keras` file without Keras: a zip of JSON and HDF5, treated as hostile.

The archive may hold only `config.json`, `metadata.json` and `model.weights.h5`, each under a
size cap, so a zip bomb or a stray path cannot do harm. `config.json` becomes a `ForwardPlan`
(a strict allowlist of layers, nothing executed). The Dense layers' arrays are read from the
HDF5 file with `h5py`, at the paths Keras writes them to, only after their shapes and dtypes
have been checked against the config, and never through a link to another file.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from agents.agent_files import AgentFileError
from agents.model_config import read_model_config
from agents.numpy_forward import ForwardPlan, UnsupportedModelError

CONFIG_MEMBER = "config.json"
METADATA_MEMBER = "metadata.json"
WEIGHTS_MEMBER = "model.weights.h5"
#: Our models are a few hundred KiB; the caps keep a hostile archive from exhausting memory.
MAX_FILE_BYTES = 64 << 20
MEMBER_CAPS = {CONFIG_MEMBER: 4 << 20, METADATA_MEMBER: 64 << 10, WEIGHTS_MEMBER: 64 << 20}
MAX_UNPACKED_BYTES = 64 << 20
REQUIRED_MEMBERS = (CONFIG_MEMBER, WEIGHTS_MEMBER)
COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
#: Where Keras files each layer's group: `layers/<snake_case class>[_<n>]` in `model.layers`
#: order (keras.src.saving.saving_lib), for the classes the plan allows.
SNAKE_CASE = {
    "InputLayer": "input_layer",
    "Dense": "dense",
    "Activation": "activation",
    "Rescaling": "rescaling",
}


class ModelFileError(ValueError):
    """What is wrong with a model's bytes; `read_model_file` adds the file's name."""


@dataclass(frozen=True)
class ModelFile:
    """What a `.keras` file holds: its graph, its Dense arrays and its exact bytes."""

    plan: ForwardPlan
    arrays: dict[str, list[np.ndarray]]
    data: bytes


def read_model_bytes(path: Path) -> bytes:
    """A model file's bytes, refusing a missing file or one over the cap before reading it."""
    if not path.is_file():
        raise AgentFileError(f"{path}: model file not found")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise AgentFileError(f"{path}: model is {size} bytes, over the {MAX_FILE_BYTES} limit")
    with path.open("rb") as stream:
        data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise AgentFileError(f"{path}: model grew past {MAX_FILE_BYTES} bytes while being read")
    return data


def read_model_file(path: Path, data: bytes | None = None) -> ModelFile:
    """Read `path` (or its bytes, already read) as a model; `AgentFileError` names the problem."""
    if data is None:
        data = read_model_bytes(path)
    try:
        return parse_model(data)
    except ModelFileError as error:
        raise AgentFileError(f"{path}: {error}") from error


def parse_model(data: bytes) -> ModelFile:
    """Check and read the bytes of a `.keras` file; raise `ModelFileError` on any problem."""
    members = _members(data)
    try:
        config = json.loads(members[CONFIG_MEMBER])
    except (ValueError, RecursionError) as error:
        raise ModelFileError(f"{CONFIG_MEMBER} is not valid JSON: {error}") from error
    try:
        plan = read_model_config(config)
    except UnsupportedModelError as error:
        raise ModelFileError(str(error)) from error
    return ModelFile(plan, _read_arrays(members[WEIGHTS_MEMBER], plan), data)


def _members(data: bytes) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ModelFileError(
            f"not a Keras 3 model archive (truncated or corrupt zip): {error}"
        ) from error
    with archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            raise ModelFileError("an archive member name appears twice")
        if unexpected := sorted(set(names) - MEMBER_CAPS.keys()):
            raise ModelFileError(
                f"unexpected archive members {unexpected}: a model holds only "
                f"{', '.join(MEMBER_CAPS)}"
            )
        if missing := [name for name in REQUIRED_MEMBERS if name not in names]:
            raise ModelFileError(f"the archive has no {', '.join(missing)}")
        if sum(info.file_size for info in infos) > MAX_UNPACKED_BYTES:
            raise ModelFileError(f"the archive unpacks to over {MAX_UNPACKED_BYTES} bytes")
        members = {}
        for info in infos:
            cap = MEMBER_CAPS[info.filename]
            if info.file_size > cap:
                raise ModelFileError(
                    f"{info.filename} unpacks to {info.file_size} bytes, over {cap}"
                )
            if info.compress_type not in COMPRESSIONS or info.flag_bits & 0x1:
                raise ModelFileError(f"{info.filename}: unsupported compression or encryption")
            try:
                with archive.open(info) as stream:
                    content = stream.read(cap + 1)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
                raise ModelFileError(f"{info.filename} is corrupt: {error}") from error
            if len(content) > cap:
                raise ModelFileError(f"{info.filename} unpacks to over {cap} bytes")
            members[info.filename] = content
    return members


def keras_layer_paths(plan: ForwardPlan) -> dict[str, str]:
    """The HDF5 group of each of the model's layers, by layer name, as Keras names them."""
    used: dict[str, int] = {}
    paths = {}
    for name, class_name in plan.keras_layers:
        base = SNAKE_CASE[class_name]
        if base in used:
            used[base] += 1
            paths[name] = f"{base}_{used[base]}"
        else:
            used[base] = 0
            paths[name] = base
    return paths


def _child(group: h5py.Group, key: str, where: str) -> h5py.Group | h5py.Dataset | None:
    """`group[key]` if it is a plain (hard) link; a soft or external link is refused."""
    link = group.get(key, getlink=True)
    if link is None:
        return None
    if not isinstance(link, h5py.HardLink):
        raise ModelFileError(f"{WEIGHTS_MEMBER}: {where}/{key} is a {type(link).__name__}")
    return group[key]


def _read_dataset(dataset: object, shape: tuple[int, ...], where: str) -> np.ndarray:
    if not isinstance(dataset, h5py.Dataset):
        raise ModelFileError(f"{WEIGHTS_MEMBER}: {where} is not an array")
    if dataset.shape != shape:
        raise ModelFileError(
            f"{WEIGHTS_MEMBER}: {where} has shape {dataset.shape}, the config implies {shape}"
        )
    if dataset.dtype.kind != "f" or dataset.dtype.itemsize > 8:
        raise ModelFileError(f"{WEIGHTS_MEMBER}: {where} holds {dataset.dtype}, not floats")
    properties = dataset.id.get_create_plist()
    if properties.get_nfilters() or properties.get_external_count() or dataset.is_virtual:
        raise ModelFileError(
            f"{WEIGHTS_MEMBER}: {where} is filtered or stored elsewhere, which Keras never does"
        )
    array = np.asarray(dataset[()], dtype=np.float32).reshape(shape)
    if not np.isfinite(array).all():
        raise ModelFileError(f"{WEIGHTS_MEMBER}: {where} holds NaN or infinite weights")
    return array


def _read_arrays(weights: bytes, plan: ForwardPlan) -> dict[str, list[np.ndarray]]:
    expected = plan.weight_shapes
    total = sum(math.prod(shape) * 8 for shapes in expected.values() for shape in shapes)
    if total > MEMBER_CAPS[WEIGHTS_MEMBER]:
        raise ModelFileError(f"the config implies {total} bytes of weights, over the limit")
    paths = keras_layer_paths(plan)
    arrays = {}
    try:
        with h5py.File(io.BytesIO(weights), "r") as weights_file:
            layers = _child(weights_file, "layers", "")
            if not isinstance(layers, h5py.Group):
                raise ModelFileError(f"{WEIGHTS_MEMBER} has no layers group")
            if unknown := sorted(set(layers.keys()) - set(paths.values())):
                raise ModelFileError(
                    f"{WEIGHTS_MEMBER} holds layers {unknown} that the config does not have"
                )
            for name, path in paths.items():
                where = f"layers/{path}"
                shapes = expected.get(name, ())
                group = _child(layers, path, "layers")
                variables = _child(group, "vars", where) if isinstance(group, h5py.Group) else None
                if not isinstance(variables, h5py.Group):
                    if shapes:
                        raise ModelFileError(f"{WEIGHTS_MEMBER} has no weights for layer {name!r}")
                    continue
                stored = variables.attrs.get("name")
                if isinstance(stored, bytes):
                    stored = stored.decode(errors="replace")
                if stored is not None and stored != name:
                    raise ModelFileError(
                        f"{WEIGHTS_MEMBER}: {where} belongs to layer {stored!r}, the config "
                        f"puts layer {name!r} there"
                    )
                keys = sorted(variables.keys())
                if keys != [str(index) for index in range(len(shapes))]:
                    raise ModelFileError(
                        f"{WEIGHTS_MEMBER}: layer {name!r} has {len(keys)} weight arrays, "
                        f"the config implies {len(shapes)}"
                    )
                arrays[name] = [
                    _read_dataset(_child(variables, str(index), f"{where}/vars"), shape,
                                  f"{where}/vars/{index} (layer {name!r})")
                    for index, shape in enumerate(shapes)
                ]  # fmt: skip
    except ModelFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as error:
        raise ModelFileError(f"{WEIGHTS_MEMBER} is not a readable HDF5 file: {error}") from error
    return arrays
