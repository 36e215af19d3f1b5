"""Build, extract and check a submission bundle: a reproducible zip with a hashed manifest.

A bundle's root holds the `agents` package source, the two weight files and `manifest.json`,
so that `from agents import InvertedPendulumAgent` works with the zip's root on the import path.
Nothing in a zip is trusted when it is read back: entry names that would land outside the
target folder, links and oversized archives are refused, and every file's hash is checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import Any

from submission.probe import ProbeSettings

MANIFEST_NAME = "manifest.json"
BUNDLE_FORMAT = "kymnasium-policy-bundle"
BUNDLE_FORMAT_VERSION = 1
#: Every entry gets the same timestamp and mode so that equal inputs give equal bytes.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
ZIP_FILE_MODE = 0o644
ZIP_COMPRESSION_LEVEL = 9
#: A bundle is well under a megabyte; the caps stop a hostile archive from filling the disk.
MAX_BUNDLE_ENTRIES = 1000
MAX_BUNDLE_BYTES = 256 << 20
PROBE_SCRIPT = Path(__file__).with_name("probe.py")
#: How long one probe (a fresh Python with TensorFlow, then the episodes) may take.
PROBE_TIMEOUT_SECONDS = 900
#: Temporary files and folders carry the owning process id: `submit-{kind}-{pid}-XXXXXXXX` in
#: the temporary folder, `.{agent}.{pid}.XXXXXXXX.zip` beside the bundle (older versions wrote
#: them without the pid). A later run removes those whose process is gone.
LEFTOVER_FOLDER = re.compile(r"submit-(?:stage|verify|probe)-(?:(\d+)-)?[a-z0-9_]{8}")
LEFTOVER_ZIP = r"\.(?:{agents})\.(?:(\d+)\.)?[a-z0-9_]{{8}}\.zip"
#: Older than this, a leftover goes even if its process id is in use again: a run takes
#: at most two probes and a few seconds around them.
STALE_AFTER_SECONDS = 4 * PROBE_TIMEOUT_SECONDS


class BundleError(ValueError):
    """A bundle could not be built, or a zip is not a sound bundle."""


def temporary_folder(kind: str) -> tempfile.TemporaryDirectory:
    """A temporary folder named so that a later run can tell it is ours and whose it was."""
    return tempfile.TemporaryDirectory(prefix=f"submit-{kind}-{os.getpid()}-")


def temporary_zip(folder: Path, agent: str) -> Path:
    """An empty hidden file beside the final bundle, to write the zip into before renaming."""
    handle, name = tempfile.mkstemp(dir=folder, prefix=f".{agent}.{os.getpid()}.", suffix=".zip")
    os.close(handle)
    return Path(name)


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _is_leftover(path: Path, pattern: re.Pattern[str], now: float) -> bool:
    match = pattern.fullmatch(path.name)
    if match is None:
        return False
    pid = match.group(1)
    if pid is not None and int(pid) != os.getpid() and _process_is_gone(int(pid)):
        return True
    try:
        return now - path.lstat().st_mtime > STALE_AFTER_SECONDS
    except OSError:
        return False


def remove_leftovers(bundle_folders: Iterable[Path], agents: Iterable[str]) -> list[Path]:
    """Remove what killed runs left behind: temporary zips of `agents` in `bundle_folders` and
    `submit-*` folders in the temporary folder, whose process is gone or that are stale.

    A concurrent run's files (its process is alive, its files fresh) are left alone, and so is
    anything that cannot be removed (another user's). Returns what was removed."""
    now = time.time()
    candidates = [(Path(tempfile.gettempdir()), LEFTOVER_FOLDER)]
    zips = re.compile(LEFTOVER_ZIP.format(agents="|".join(map(re.escape, agents))))
    candidates += [(Path(folder), zips) for folder in bundle_folders]
    removed = []
    for folder, pattern in candidates:
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for path in entries:
            if not _is_leftover(path, pattern, now):
                continue
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except OSError:
                continue
            removed.append(path)
    return removed


def is_bundle(path: Path) -> bool:
    """Whether `path` is a zip this command wrote (its manifest has the bundle format)."""
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read(MANIFEST_NAME))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == BUNDLE_FORMAT


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def package_files(agents_dir: Path) -> dict[str, Path]:
    """The source files of an agents package (no caches), by their name in a bundle."""
    files = {}
    for source in sorted(agents_dir.rglob("*.py")):
        relative = source.relative_to(agents_dir)
        if "__pycache__" not in relative.parts:
            files[(PurePosixPath("agents") / relative.as_posix()).as_posix()] = source
    return files


def stage_bundle(stage: Path, agents_dir: Path, weight_files: dict[str, Path]) -> None:
    """Copy the agents package source (no caches) and the weight files into `stage`.

    `weight_files` maps each file's name in the bundle to the file to copy there.
    """
    if not (agents_dir / "__init__.py").is_file():
        raise BundleError(f"{agents_dir}: not a Python package (no __init__.py)")
    for name, source in package_files(agents_dir).items():
        target = stage / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    for name, source in weight_files.items():
        shutil.copyfile(source, stage / name)


def file_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file below `root` but the manifest, by POSIX relative path, sorted."""
    hashes = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and relative != MANIFEST_NAME:
            hashes[relative] = sha256_bytes(path.read_bytes())
    return hashes


def write_manifest(stage: Path, fields: dict[str, Any]) -> dict[str, Any]:
    """Write `manifest.json` (sorted keys, so equal content gives equal bytes)."""
    manifest = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        **fields,
        "files": file_hashes(stage),
    }
    (stage / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def write_reproducible_zip(stage: Path, target: Path) -> None:
    """Zip the manifest and the files it lists, sorted, with fixed timestamps and modes.

    Only what the manifest names goes in, so nothing written into the stage after the manifest
    (caches, say) can slip into the bundle, and equal inputs give equal bytes.
    """
    listed = json.loads((stage / MANIFEST_NAME).read_text())["files"]
    with zipfile.ZipFile(target, "w") as archive:
        for name in sorted([*listed, MANIFEST_NAME]):
            path = stage / name
            info = zipfile.ZipInfo(name, ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | ZIP_FILE_MODE) << 16
            archive.writestr(info, path.read_bytes(), compresslevel=ZIP_COMPRESSION_LEVEL)


def _checked_target(root: Path, info: zipfile.ZipInfo) -> Path:
    """Where an entry would be written, or `BundleError` if that is not safely inside `root`."""
    name = info.filename
    parts = PurePosixPath(name).parts
    if (
        not name
        or name.startswith(("/", "\\"))
        or "\\" in name
        or ".." in parts
        or (parts and ":" in parts[0])
    ):
        raise BundleError(f"zip entry {name!r} would be written outside the bundle folder")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise BundleError(f"zip entry {name!r} is a symbolic link")
    target = (root / name).resolve()
    if not target.is_relative_to(root):
        raise BundleError(f"zip entry {name!r} would be written outside the bundle folder")
    return target


def safe_extract(zip_path: Path, root: Path) -> list[str]:
    """Extract a zip into `root` after checking every entry; returns the file names."""
    root = root.resolve()
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise BundleError(f"{zip_path}: not a readable zip: {error}") from error
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_BUNDLE_ENTRIES:
            raise BundleError(f"{zip_path}: {len(infos)} entries, over {MAX_BUNDLE_ENTRIES}")
        if sum(info.file_size for info in infos) > MAX_BUNDLE_BYTES:
            raise BundleError(f"{zip_path}: unpacks to over {MAX_BUNDLE_BYTES} bytes")
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            raise BundleError(f"{zip_path}: an entry name appears twice")
        targets = [_checked_target(root, info) for info in infos]  # check all before writing
        for info, target in zip(infos, targets, strict=True):
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink)
    return [name for name in names if not name.endswith("/")]


def check_extracted(root: Path, names: list[str]) -> dict[str, Any]:
    """Check the manifest's hashes against the extracted files; return the manifest."""
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise BundleError(f"the bundle has no {MANIFEST_NAME}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise BundleError(f"{MANIFEST_NAME} is not valid JSON: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{MANIFEST_NAME} is not a {BUNDLE_FORMAT} manifest")
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise BundleError(f"{MANIFEST_NAME} has no files map")
    present = set(names) - {MANIFEST_NAME}
    if missing := sorted(set(listed) - present):
        raise BundleError(f"files in the manifest but not in the zip: {missing}")
    if unlisted := sorted(present - set(listed)):
        raise BundleError(f"files in the zip but not in the manifest: {unlisted}")
    for name, expected in sorted(listed.items()):
        actual = sha256_bytes((root / name).read_bytes())
        if actual != expected:
            raise BundleError(
                f"{name}: SHA-256 {actual[:12]}... does not match the manifest's {expected[:12]}..."
            )
    return manifest


def run_probe(bundle: Path, settings: ProbeSettings) -> dict[str, Any]:
    """Run `probe.py` in a fresh, isolated Python from an empty folder; return its report."""
    with temporary_folder("probe") as folder:
        empty, request_path = Path(folder) / "cwd", Path(folder) / "request.json"
        empty.mkdir()
        result_path = Path(folder) / "result.json"
        request = {"bundle": str(bundle.resolve()), "result": str(result_path), **asdict(settings)}
        request_path.write_text(json.dumps(request, indent=2))
        command = [
            sys.executable,
            "-I",  # isolated: no script folder, PYTHONPATH or user site on the import path
            "-B",  # write no __pycache__ into the bundle being checked
            str(PROBE_SCRIPT),
            str(request_path),
        ]
        environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        environment.setdefault("MUJOCO_GL", "egl")
        environment.setdefault("SDL_VIDEODRIVER", "dummy")
        completed = subprocess.run(
            command,
            cwd=empty,
            env=environment,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            check=False,
        )
        if not result_path.is_file():
            tail = "\n".join(completed.stderr.strip().splitlines()[-8:])
            return {
                "ok": False,
                "checks": [
                    {
                        "name": "probe",
                        "ok": False,
                        "detail": f"the fresh Python exited {completed.returncode} without a "
                        f"report:\n{tail}",
                    }
                ],
            }
        return json.loads(result_path.read_text())
