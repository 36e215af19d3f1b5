"""submit.py: every way a submission can be broken is caught, and nothing half-made is left.

Tiny models built here stand in for trained weights wherever the score is not the point
(`--min-score 0`); the shipped weights are checked end to end in the last tests.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import course_pendulum_model

import submit
from agents import numpy_forward as numpy_forward_module
from agents.agent_files import read_config, sha256_of
from submission import bundle as bundle_module

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Where the score and speed are not the point: few episodes, no score bar, and a latency limit
#: that a loaded machine cannot trip (the default limit is tested by the shipped-weights test).
QUICK = ["--episodes", "2", "--min-score", "0", "--max-p99-us", "1e6"]


def run_submit(*args: str | Path) -> tuple[int, dict]:
    """Run the real command line in a subprocess; return the exit code and its JSON report."""
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "submit.py"), *map(str, args), "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    return completed.returncode, json.loads(completed.stdout)


def copied_agents(tmp_path: Path) -> Path:
    """A copy of this repository's agents package, to break on purpose."""
    target = tmp_path / "patched" / "agents"
    shutil.copytree(REPO_ROOT / "agents", target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def patched_agents(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the agents package with one line of the pendulum agent changed."""
    target = copied_agents(tmp_path)
    module = target / "inverted_pendulum.py"
    source = module.read_text()
    assert old in source
    module.write_text(source.replace(old, new))
    return target


def submit_pendulum_with(agents_dir: Path, weights: Path, out: Path) -> tuple[int, dict]:
    """Quick submit of the pendulum weights, bundling the given agents package."""
    return run_submit(
        "--agent",
        "pendulum",
        "--weights",
        weights,
        "--out",
        out,
        "--agents-dir",
        agents_dir,
        *QUICK,
    )


def assert_no_bundle(out: Path) -> None:
    assert not out.exists() or list(out.iterdir()) == []


def test_bundle_is_verified_complete_and_reproducible(pendulum_weights: Path, tmp_path: Path):
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        code, report = run_submit(
            "--agent", "pendulum", "--weights", pendulum_weights, "--out", out, *QUICK
        )
        assert code == 0 and report["ok"], report
    zip_path = first / "pendulum.zip"
    assert zip_path.read_bytes() == (second / "pendulum.zip").read_bytes()
    zip_checks = [check["name"] for check in report["checks"] if check["stage"] == "zip"]
    assert zip_checks[0] == "bundle" and "score" in zip_checks
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
    agents_sources = {f"agents/{path.name}" for path in (REPO_ROOT / "agents").glob("*.py")}
    assert agents_sources | {"pendulum.keras", "pendulum.config", "manifest.json"} == names
    assert set(manifest["files"]) == names - {"manifest.json"}
    assert manifest["agent_class"] == "agents:InvertedPendulumAgent"
    assert manifest["env_id"] == "InvertedPendulum-v5"
    assert manifest["versions"]["python"].startswith("3.12")
    assert set(manifest["runtime_requirements"]) == {
        "python", "numpy", "h5py", "kymnasium", "gymnasium"
    }  # fmt: skip
    assert not any(name.startswith("training") for name in names)
    assert "runtime" in zip_checks and "keras" in [check["name"] for check in report["checks"]]


def test_bundle_imports_and_acts_from_its_root_alone(pendulum_weights: Path, tmp_path: Path):
    out = tmp_path / "dist"
    assert (
        run_submit("--agent", "pendulum", "--weights", pendulum_weights, "--out", out, *QUICK)[0]
        == 0
    )
    root = tmp_path / "unzipped"
    with zipfile.ZipFile(out / "pendulum.zip") as archive:
        archive.extractall(root)
    script = (
        "from agents import InvertedPendulumAgent; import numpy as np; "
        "a = InvertedPendulumAgent.load('pendulum').act(np.zeros(4), {}); "
        "print(a.dtype, a.shape)"
    )
    completed = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, '.'); {script}"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.strip() == "float32 (1,)"


def test_missing_model_fails_without_bundle(cartpole_weights: Path, tmp_path: Path):
    """A config without its model (a lone model is a course checkpoint: test_submit_course)."""
    cartpole_weights.with_suffix(".keras").unlink()
    out = tmp_path / "dist"
    code, report = run_submit("--agent", "cartpole", "--weights", cartpole_weights, "--out", out)
    assert code == 1 and report["error"]["check"] == "weights"
    detail = report["error"]["detail"]
    assert "cartpole.keras" in detail and "not found" in detail
    assert_no_bundle(out)


def test_corrupt_keras_fails_without_bundle(cartpole_weights: Path, tmp_path: Path):
    model = cartpole_weights.with_suffix(".keras")
    model.write_bytes(model.read_bytes()[:1000])
    out = tmp_path / "dist"
    code, report = run_submit("--agent", "cartpole", "--weights", cartpole_weights, "--out", out)
    assert code == 1 and "cartpole.keras" in report["error"]["detail"]
    assert_no_bundle(out)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_fails_and_never_runs(cartpole_weights: Path, tmp_path: Path):
    marker = tmp_path / "exploited"
    cartpole_weights.with_suffix(".config").write_bytes(pickle.dumps(_Exploit(marker)))
    out = tmp_path / "dist"
    code, report = run_submit("--agent", "cartpole", "--weights", cartpole_weights, "--out", out)
    assert code == 1 and "refused to unpickle posix.system" in report["error"]["detail"]
    assert not marker.exists()
    assert_no_bundle(out)


def test_wrong_task_weights_fail_without_bundle(pendulum_weights: Path, tmp_path: Path):
    out = tmp_path / "dist"
    code, report = run_submit("--agent", "cartpole", "--weights", pendulum_weights, "--out", out)
    assert code == 1 and "for the 'pendulum' task" in report["error"]["detail"]
    assert_no_bundle(out)


@pytest.mark.parametrize("bad_action", ["np.float32(5.0)", "np.nan"])
def test_out_of_range_or_nan_actions_fail(pendulum_weights: Path, tmp_path: Path, bad_action):
    agents_dir = patched_agents(
        tmp_path,
        "    def _action(self, output: np.ndarray) -> np.ndarray:\n",
        "    def _action(self, output: np.ndarray) -> np.ndarray:\n"
        f"        return np.array([{bad_action}], dtype=np.float32)\n",
    )
    out = tmp_path / "dist"
    code, report = submit_pendulum_with(agents_dir, pendulum_weights, out)
    assert code == 1 and report["error"]["check"] == "act"
    assert "is not in Box" in report["error"]["detail"]
    assert_no_bundle(out)


def test_agent_below_the_score_bar_fails(cartpole_weights: Path, tmp_path: Path):
    out = tmp_path / "dist"
    code, report = run_submit(
        "--agent", "cartpole", "--weights", cartpole_weights, "--out", out, "--episodes", "3"
    )
    assert code == 1 and report["error"]["check"] == "score"
    assert "bar 475" in report["error"]["detail"]
    assert_no_bundle(out)


def test_bundle_missing_a_module_fails_even_with_the_project_installed(
    pendulum_weights: Path, tmp_path: Path
):
    agents_dir = copied_agents(tmp_path)
    (agents_dir / "numpy_forward.py").unlink()
    out = tmp_path / "dist"
    code, report = submit_pendulum_with(agents_dir, pendulum_weights, out)
    assert code == 1 and report["error"]["check"] == "import"
    assert "numpy_forward" in report["error"]["detail"]
    assert_no_bundle(out)


def test_tampering_between_writing_and_verifying_leaves_no_bundle(
    pendulum_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    write = bundle_module.write_reproducible_zip

    def write_then_tamper(stage: Path, target: Path) -> None:
        (stage / "agents" / "base.py").write_text("raise SystemExit('tampered')\n")
        write(stage, target)

    monkeypatch.setattr(bundle_module, "write_reproducible_zip", write_then_tamper)
    out = tmp_path / "dist"
    code = submit.main(
        ["--agent", "pendulum", "--weights", str(pendulum_weights), "--out", str(out), *QUICK]
    )
    assert code == 1
    assert "agents/base.py: SHA-256" in capsys.readouterr().out
    assert_no_bundle(out)


def _built_zip(pendulum_weights: Path, tmp_path: Path) -> Path:
    out = tmp_path / "dist"
    assert (
        run_submit("--agent", "pendulum", "--weights", pendulum_weights, "--out", out, *QUICK)[0]
        == 0
    )
    return out / "pendulum.zip"


def _rewrite_zip(source: Path, target: Path, replace: dict[str, bytes]) -> None:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info.filename, replace.pop(info.filename, old.read(info)))
        for name, data in replace.items():
            new.writestr(name, data)


def test_verify_rejects_a_tampered_bundle(pendulum_weights: Path, tmp_path: Path):
    tampered = tmp_path / "tampered.zip"
    _rewrite_zip(
        _built_zip(pendulum_weights, tmp_path),
        tampered,
        {"agents/cartpole.py": b"print('hello')\n"},
    )
    code, report = run_submit("--verify", tampered)
    assert code == 1 and report["error"]["check"] == "bundle"
    assert "agents/cartpole.py: SHA-256" in report["error"]["detail"]


def test_verify_refuses_entries_outside_the_folder(pendulum_weights: Path, tmp_path: Path):
    hostile = tmp_path / "inner" / "hostile.zip"
    hostile.parent.mkdir()
    _rewrite_zip(
        _built_zip(pendulum_weights, tmp_path), hostile, {"../escaped.py": b"print('outside')\n"}
    )
    code, report = run_submit("--verify", hostile)
    assert code == 1 and "'../escaped.py' would be written outside" in report["error"]["detail"]
    assert not list(tmp_path.rglob("escaped.py"))


@pytest.mark.parametrize(
    "name", ["/etc/evil", "a/../../evil", "..\\evil", "C:/evil", "ok/../../../evil"]
)
def test_safe_extract_refuses_every_escaping_name(tmp_path: Path, name: str):
    archive_path = tmp_path / "a.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.writestr(name, b"x")
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(bundle_module.BundleError, match="outside the bundle folder"):
        bundle_module.safe_extract(archive_path, target)
    assert list(target.iterdir()) == []


def test_weights_named_with_a_suffix_are_the_same_prefix(cartpole_weights: Path, tmp_path: Path):
    """`--weights weights/cartpole.keras` means the prefix, as `Agent.load` reads it."""
    out = tmp_path / "dist"
    code, report = run_submit(
        "--agent",
        "cartpole",
        "--weights",
        cartpole_weights.with_suffix(".keras"),
        "--out",
        out,
        *QUICK,
    )
    assert code == 0 and report["ok"], report
    with zipfile.ZipFile(out / "cartpole.zip") as archive:
        for suffix in (".keras", ".config"):
            expected = cartpole_weights.with_suffix(suffix).read_bytes()
            assert archive.read(f"cartpole{suffix}") == expected


def test_a_lone_course_pendulum_model_submits_with_a_hashed_config(tmp_path: Path):
    prefix = tmp_path / "course" / "pendulum"
    prefix.parent.mkdir()
    course_pendulum_model().save(prefix.with_suffix(".keras"))
    out = tmp_path / "dist"
    code, report = run_submit("--agent", "pendulum", "--weights", prefix, "--out", out, *QUICK)
    assert code == 0 and report["ok"], report
    detail = report["checks"][0]["detail"]
    assert "pendulum.keras alone (no pendulum.config" in detail and "+ .config" not in detail
    assert "course-format files carry no hash" in detail
    root = tmp_path / "unzipped"
    with zipfile.ZipFile(out / "pendulum.zip") as archive:
        archive.extractall(root)
    assert (root / "pendulum.keras").read_bytes() == prefix.with_suffix(".keras").read_bytes()
    assert read_config(root / "pendulum.config")["model_sha256"] == sha256_of(
        prefix.with_suffix(".keras")
    )


def test_an_agent_that_imports_keras_to_act_fails_the_runtime_check(
    pendulum_weights: Path, tmp_path: Path
):
    # What importing Keras leaves behind, without paying for a TensorFlow import here.
    agents_dir = patched_agents(
        tmp_path,
        "    def _action(self, output: np.ndarray) -> np.ndarray:\n",
        "    def _action(self, output: np.ndarray) -> np.ndarray:\n"
        "        import sys, types; sys.modules.setdefault('keras', types.ModuleType('keras'))\n",
    )
    out = tmp_path / "dist"
    code, report = submit_pendulum_with(agents_dir, pendulum_weights, out)
    assert code == 1 and report["error"]["check"] == "runtime"
    assert "imported keras" in report["error"]["detail"]
    assert_no_bundle(out)


def test_a_numpy_pass_that_disagrees_with_keras_fails(
    cartpole_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    wrong_softmax = dict(numpy_forward_module.ACTIVATIONS, softmax=lambda x: x)
    monkeypatch.setattr(numpy_forward_module, "ACTIVATIONS", wrong_softmax)
    out = tmp_path / "dist"
    code = submit.main(
        ["--agent", "cartpole", "--weights", str(cartpole_weights), "--out", str(out), *QUICK]
    )
    assert code == 1
    assert "the NumPy pass differs from Keras by" in capsys.readouterr().out
    assert_no_bundle(out)
