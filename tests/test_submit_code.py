"""submit.py --verify: a bundle's runtime code is compared with this project's before it runs.

A bundle built here is changed as a classmate could change it: one runtime file edited (or
added) so that importing the package writes a marker file, and the manifest's hashes fixed
up to match, so the zip agrees with itself. Verification must name the change and run
nothing, unless `--trust-code` says to run it.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from test_submit import QUICK, _built_zip, _rewrite_zip, copied_agents, run_submit

from submission.runtime_code import compare_bundle

REPO_ROOT = Path(__file__).resolve().parent.parent


def project_version() -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO_ROOT / "setup.cfg")
    return parser["metadata"]["version"]


def marker_line(marker: Path) -> bytes:
    """A line that, once imported, leaves `marker` behind: proof the bundle's code ran."""
    return f"\nimport pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n".encode()


def changed_bundle(
    built: Path, target: Path, files: dict[str, bytes], settings: dict | None = None
) -> Path:
    """`built` with `files` replaced or added and the manifest's hashes fixed up to match."""
    with zipfile.ZipFile(built) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    for name, data in files.items():
        manifest["files"][name] = hashlib.sha256(data).hexdigest()
    manifest["validation"]["settings"].update(settings or {})
    replaced = {**files, "manifest.json": json.dumps(manifest, indent=2).encode()}
    _rewrite_zip(built, target, replaced)
    return target


def run_text(*args: str | Path) -> subprocess.CompletedProcess:
    """The real command line, its text report on stdout and any notes on stderr."""
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "submit.py"), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )


@pytest.fixture
def built(pendulum_weights: Path, tmp_path: Path) -> Path:
    return _built_zip(pendulum_weights, tmp_path)


@pytest.fixture
def marked(built: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A bundle whose agents/__init__.py writes a marker file; returns (zip, marker)."""
    marker = tmp_path / "the-bundle-code-ran"
    with zipfile.ZipFile(built) as archive:
        init = archive.read("agents/__init__.py")
    zip_path = changed_bundle(
        built, tmp_path / "changed.zip", {"agents/__init__.py": init + marker_line(marker)}
    )
    return zip_path, marker


def test_the_built_bundle_records_its_builder_and_verifies_as_identical(built: Path):
    with zipfile.ZipFile(built) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    sources = {
        f"agents/{path.name}": hashlib.sha256(path.read_bytes()).hexdigest()
        for path in (REPO_ROOT / "agents").glob("*.py")
    }
    assert manifest["built_by"]["version"] == project_version()
    assert manifest["built_by"]["agents_sources"] == sources
    completed = run_text("--verify", built)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = [line for line in completed.stdout.splitlines() if "runtime code:" in line]
    assert len(lines) == 1 and f"runtime code: identical to agents {project_version()}" in lines[0]
    assert "PASSED" in completed.stdout and "trust" not in completed.stderr


def test_verify_refuses_changed_runtime_code_and_runs_none_of_it(marked: tuple[Path, Path]):
    zip_path, marker = marked
    code, report = run_submit("--verify", zip_path)
    assert code == 1 and report["error"]["check"] == "code"
    assert "agents/__init__.py (changed)" in report["error"]["detail"]
    assert f"--verify {zip_path} --trust-code" in report["fix"]
    assert not marker.exists()
    assert [check["name"] for check in report["checks"]] == ["bundle", "code"]  # no probe


def test_trust_code_runs_the_changed_code_and_says_so_first(marked: tuple[Path, Path]):
    zip_path, marker = marked
    completed = run_text("--verify", zip_path, "--trust-code")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert marker.read_text() == "ran"
    assert "this runs the bundle's code" in completed.stderr
    assert "as the evaluator will" in completed.stderr
    assert "agents/__init__.py (changed)" in completed.stdout


def test_an_extra_module_beside_the_package_is_refused(built: Path, tmp_path: Path):
    """A `kymnasium.py` at the root would shadow the library the agents import."""
    marker = tmp_path / "shadow-ran"
    zip_path = changed_bundle(built, tmp_path / "shadow.zip", {"kymnasium.py": marker_line(marker)})
    code, report = run_submit("--verify", zip_path)
    assert code == 1 and "kymnasium.py (extra, outside agents/)" in report["error"]["detail"]
    assert not marker.exists()


def test_probe_settings_naming_another_class_are_refused(built: Path, tmp_path: Path):
    zip_path = changed_bundle(
        built, tmp_path / "other.zip", {}, {"agent_class": "agents.base:PolicyAgent"}
    )
    code, report = run_submit("--verify", zip_path)
    assert code == 1 and report["error"]["check"] == "code"
    assert "'agents.base:PolicyAgent'" in report["error"]["detail"]


def test_a_build_from_another_agents_dir_says_so_and_its_verify_refuses_it(
    pendulum_weights: Path, tmp_path: Path
):
    """--agents-dir is the builder's own choice, so the build runs it; a verifier is told."""
    agents_dir = copied_agents(tmp_path)
    (agents_dir / "cartpole.py").write_text((agents_dir / "cartpole.py").read_text() + "# mine\n")
    out = tmp_path / "dist"
    code, report = run_submit(
        "--agent", "pendulum", "--weights", pendulum_weights, "--out", out,
        "--agents-dir", agents_dir, *QUICK,
    )  # fmt: skip
    assert code == 0, report
    line = next(check["detail"] for check in report["checks"] if check["name"] == "code")
    assert "agents/cartpole.py (changed)" in line and "bundled from --agents-dir" in line
    code, report = run_submit("--verify", out / "pendulum.zip")
    assert code == 1 and "agents/cartpole.py (changed)" in report["error"]["detail"]


def test_trust_code_goes_with_verify_only(pendulum_weights: Path, tmp_path: Path):
    completed = run_text(
        "--agent", "pendulum", "--weights", pendulum_weights, "--out", tmp_path, "--trust-code",
        *QUICK,
    )  # fmt: skip
    assert completed.returncode == 2 and "--trust-code goes with --verify" in completed.stderr


def test_compare_bundle_names_caches_and_missing_modules(tmp_path: Path):
    """A stale `.pyc` could be imported instead of its source; a missing module is a change."""
    root = tmp_path / "bundle"
    names = []
    for source in (REPO_ROOT / "agents").glob("*.py"):
        if source.name != "cartpole.py":
            (root / "agents").mkdir(parents=True, exist_ok=True)
            (root / "agents" / source.name).write_bytes(source.read_bytes())
            names.append(f"agents/{source.name}")
    (root / "agents" / "__pycache__").mkdir()
    (root / "agents" / "__pycache__" / "base.cpython-312.pyc").write_bytes(b"\0")
    names += ["agents/__pycache__/base.cpython-312.pyc", "pendulum.keras", "pendulum.config"]
    settings = {
        "agent_class": "agents:InvertedPendulumAgent",
        "weights": "pendulum",
        "env_id": "InvertedPendulum-v5",
    }
    code = compare_bundle(root, names, {"validation": {"settings": settings}})
    assert code.differences == (
        "agents/__pycache__/base.cpython-312.pyc (extra)",
        "agents/cartpole.py (missing)",
    )
