"""The two files of an agent, `{prefix}.keras` and `{prefix}.config`, written and read safely.

Both files are untrusted input at load. The config format is the evaluator's: a pickle of a
plain dict, and a pickle can name any callable to run on load. Plain data (dict, list, tuple,
str, bytes, int, float, bool, None) never needs `find_class`, so the reader below refuses every
global lookup: a crafted file fails before anything runs. The model is read without Keras
(`agents.keras_file`). Writes go to temporary files that are renamed into place, so a failed
save keeps the old pair.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: A config is a few hundred bytes; refusing large files bounds memory on hostile input.
MAX_CONFIG_BYTES = 1 << 20
#: Protocol 4 pickles bytes, tuples and dicts without any global lookup.
PICKLE_PROTOCOL = 4
PLAIN_SCALARS = (str, bytes, int, float, bool, type(None))
MODEL_SUFFIX = ".keras"
CONFIG_SUFFIX = ".config"


class AgentFileError(ValueError):
    """An agent file is missing, truncated, hostile, foreign or for another task.

    `names_fix` says the message already tells the user what to do instead (a command adds a
    generic fix to the others)."""

    def __init__(self, message: str, names_fix: bool = False) -> None:
        super().__init__(message)
        self.names_fix = names_fix


class _PlainDataUnpickler(pickle.Unpickler):
    """An unpickler that admits only the built-in plain-data opcodes."""

    def __init__(self, stream: io.BytesIO, source: Path) -> None:
        super().__init__(stream)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        raise AgentFileError(
            f"{self._source}: refused to unpickle {module}.{name}: a config may hold only plain "
            "data (dict, list, tuple, str, bytes, int, float, bool, None)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise AgentFileError(f"{self._source}: refused a persistent reference: not plain data")


def check_plain_data(value: Any, where: str = "config") -> None:
    """Raise `AgentFileError` unless `value` is built only from plain data with string keys."""
    if isinstance(value, PLAIN_SCALARS):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise AgentFileError(f"{where}: key {key!r} is not a string")
            check_plain_data(item, f"{where}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_plain_data(item, f"{where}[{index}]")
        return
    raise AgentFileError(f"{where}: {type(value).__name__} is not plain data")


def dumps_config(config: dict[str, Any]) -> bytes:
    """Pickle a plain-data dict; refuse anything the safe reader would refuse."""
    if not isinstance(config, dict):
        raise AgentFileError(f"config must be a dict, not {type(config).__name__}")
    check_plain_data(config)
    return pickle.dumps(config, protocol=PICKLE_PROTOCOL)


def read_config(path: str | Path) -> dict[str, Any]:
    """Load a config file safely; every error names the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise AgentFileError(f"{path}: config file not found")
    size = path.stat().st_size
    if size == 0:
        raise AgentFileError(f"{path}: config file is empty")
    if size > MAX_CONFIG_BYTES:
        raise AgentFileError(f"{path}: config is {size} bytes, over the {MAX_CONFIG_BYTES} limit")
    data = path.read_bytes()
    try:
        config = _PlainDataUnpickler(io.BytesIO(data), path).load()
    except AgentFileError:
        raise
    except Exception as error:
        raise AgentFileError(
            f"{path}: not a readable config pickle (truncated or corrupt): {error}"
        ) from error
    if not isinstance(config, dict):
        raise AgentFileError(f"{path}: holds a {type(config).__name__}, expected a dict")
    check_plain_data(config, str(path))
    return config


def agent_prefix(path: str | os.PathLike[str]) -> Path:
    """The prefix an agent's files share: `path` without a trailing `.keras` or `.config`."""
    prefix = Path(path)
    return prefix.with_suffix("") if prefix.suffix in (MODEL_SUFFIX, CONFIG_SUFFIX) else prefix


def agent_paths(prefix: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Return the `.keras` and `.config` paths of an agent prefix (a trailing suffix is ignored)."""
    prefix = agent_prefix(prefix)
    return (
        prefix.with_name(prefix.name + MODEL_SUFFIX),
        prefix.with_name(prefix.name + CONFIG_SUFFIX),
    )


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of bytes already in memory."""
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _new_temporary(folder: Path, stem: str, suffix: str) -> Path:
    """Create an empty file with a fresh name in `folder`, its mode set by the umask.

    `tempfile.mkstemp` would make it 0600, and the rename would carry that onto the agent's
    files; an ordinary new file is what the user expects.
    """
    while True:
        path = folder / f".{stem}.{secrets.token_hex(6)}.tmp{suffix}"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return path


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_pair_atomically(
    prefix: str | os.PathLike[str],
    save_model: Callable[[Path], None],
    make_config: Callable[[str], dict[str, Any]],
) -> tuple[Path, Path]:
    """Write an agent's two files through temporaries, then rename both into place.

    `save_model(tmp_path)` writes the model; `make_config(model_sha256)` builds the config, so
    the config records a hash of exactly the model it was saved with. If anything fails before
    the renames, the previous pair is untouched and no temporary file is left behind.
    """
    model_path, config_path = agent_paths(prefix)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    temporaries: list[Path] = []
    try:
        for suffix in (MODEL_SUFFIX, CONFIG_SUFFIX):
            temporaries.append(_new_temporary(model_path.parent, model_path.stem, suffix))
        tmp_model, tmp_config = temporaries
        save_model(tmp_model)
        _fsync(tmp_model)  # on disk before the renames: a crash cannot leave half a model
        config_bytes = dumps_config(make_config(sha256_of(tmp_model)))
        with tmp_config.open("wb") as stream:
            stream.write(config_bytes)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp_model, model_path)
        os.replace(tmp_config, config_path)
        _fsync(model_path.parent)  # and the renames themselves
    finally:
        for temporary in temporaries:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
    return model_path, config_path
