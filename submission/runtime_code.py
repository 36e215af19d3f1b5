"""Whose code a bundle runs: its files compared with this project's own `agents` package.

Verifying a bundle means running its code: the probe imports the bundle's `agents` package in
a fresh Python, as the evaluator will. A manifest's hashes only show that a zip agrees with
itself, so before any probe every file the bundle ships is compared, byte for byte, with this
project's package. Only the manifest and the two weight files its probe settings name are
data (read by this project's own loaders). Any other file is code, or could be imported as
code (a `kymnasium.py` beside `agents/` would shadow the installed library), so it counts as a
difference. So do probe settings that would import anything but one of this project's agent
classes.
"""

from __future__ import annotations

import configparser
import hashlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import agents
from agents import AGENT_CLASSES
from submission.bundle import MANIFEST_NAME, package_files, sha256_bytes

#: The distribution this project's `agents` package belongs to (setup.cfg's name).
DISTRIBUTION = "kymnasium-policy-gradient"
PACKAGE_DIR = Path(agents.__file__).resolve().parent
WEIGHT_SUFFIXES = (".keras", ".config")
#: What the probe may be asked to load: this project's agent classes, their weights and envs.
KNOWN_TARGETS = {
    (f"agents:{cls.__name__}", name, cls.env_id) for name, cls in AGENT_CLASSES.items()
}


def package_version() -> str:
    """This project's version: its setup.cfg when the package runs from a checkout (an
    editable install's metadata keeps the version it was installed with), else the metadata."""
    setup_cfg = PACKAGE_DIR.parent / "setup.cfg"
    parser = configparser.ConfigParser(interpolation=None)
    read = setup_cfg.is_file() and parser.read(setup_cfg)
    if read and parser.get("metadata", "name", fallback=None) == DISTRIBUTION:
        return parser.get("metadata", "version", fallback="(unversioned)")
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "(unversioned)"


def package_sources(agents_dir: Path = PACKAGE_DIR) -> dict[str, str]:
    """SHA-256 of every source file of an agents package, by its name in a bundle."""
    return {
        name: sha256_bytes(path.read_bytes()) for name, path in package_files(agents_dir).items()
    }


def sources_digest(sources: dict[str, str]) -> str:
    """One SHA-256 over a package's file names and hashes: a short name for one exact source."""
    listing = "".join(f"{name}\0{digest}\n" for name, digest in sorted(sources.items()))
    return hashlib.sha256(listing.encode()).hexdigest()


def build_record() -> dict[str, Any]:
    """What a manifest records of the package that built the bundle (`built_by`)."""
    sources = package_sources()
    return {
        "package": DISTRIBUTION,
        "version": package_version(),
        "agents_sources": sources,
        "agents_sha256": sources_digest(sources),
    }


@dataclass(frozen=True)
class CodeComparison:
    """A bundle's runtime code against this project's package."""

    version: str
    files: int
    digest: str
    #: Each differing, extra or missing file (or probe setting), with what is wrong with it.
    differences: tuple[str, ...]
    #: The version the bundle's manifest says built it (a claim the zip makes about itself).
    claimed_version: str | None

    @property
    def identical(self) -> bool:
        return not self.differences

    def describe(self) -> str:
        if self.identical:
            line = (
                f"runtime code: identical to agents {self.version} (this project's package: "
                f"{self.files} files, sources SHA-256 {self.digest[:12]})"
            )
        else:
            line = (
                f"runtime code differs from agents {self.version} (this project's package): "
                + ", ".join(self.differences)
            )
        if self.claimed_version not in (None, self.version):
            line += f"; its manifest says agents {self.claimed_version} built it"
        return line


def _claimed_version(manifest: dict[str, Any]) -> str | None:
    built_by = manifest.get("built_by")
    version = built_by.get("version") if isinstance(built_by, dict) else None
    return version if isinstance(version, str) else None


def compare_bundle(root: Path, names: list[str], manifest: dict[str, Any]) -> CodeComparison:
    """Compare the extracted bundle at `root` (its file `names`) with this project's package."""
    ours = package_sources()
    settings = manifest["validation"]["settings"]
    target = tuple(
        value if isinstance(value, str) else repr(value)  # the manifest is untrusted JSON
        for value in (settings.get(key) for key in ("agent_class", "weights", "env_id"))
    )
    differences = []
    if target not in KNOWN_TARGETS:
        differences.append(
            f"{MANIFEST_NAME} (its probe would import {target[0]!r} and load {target[1]!r} on "
            f"{target[2]!r}: not one of this project's agents)"
        )
    data = {MANIFEST_NAME}
    if target[1] in AGENT_CLASSES:
        data |= {f"{target[1]}{suffix}" for suffix in WEIGHT_SUFFIXES}
    theirs = {}
    for name in sorted(names):
        if name.startswith("agents/"):
            theirs[name] = sha256_bytes((root / name).read_bytes())
        elif name not in data:
            differences.append(f"{name} (extra, outside agents/)")
    for name in sorted(ours.keys() | theirs.keys()):
        if name not in ours:
            differences.append(f"{name} (extra)")
        elif name not in theirs:
            differences.append(f"{name} (missing)")
        elif ours[name] != theirs[name]:
            differences.append(f"{name} (changed)")
    return CodeComparison(
        version=package_version(),
        files=len(ours),
        digest=sources_digest(ours),
        differences=tuple(differences),
        claimed_version=_claimed_version(manifest),
    )
