"""Verify a finished zip: extract it safely, check its hashes and whose code it is, then run it.

Nothing of a bundle runs before its runtime code is compared with this project's `agents`
package (`submission.runtime_code`): this project's own code runs, a build runs the package
it was given (`--agents-dir`), and any other code runs only with `--trust-code`, which says
so first. Running means the probe (`submission/probe.py`) in a fresh, isolated Python, whose
import path holds only the extracted bundle, as the evaluator will import it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from submission.bundle import (
    BundleError,
    ProbeSettings,
    check_extracted,
    run_probe,
    safe_extract,
    temporary_folder,
)
from submission.checks import CheckFailedError
from submission.runtime_code import compare_bundle

#: Said (on stderr, before anything runs) when --trust-code runs code that is not this project's.
TRUST_LINE = (
    "submit: --trust-code: this runs the bundle's code, not this project's, in a fresh "
    "isolated Python, as the evaluator will"
)


def probe_or_fail(
    bundle: Path, settings: Any, checks: list[dict[str, Any]], stage: str
) -> dict[str, Any]:
    report = run_probe(bundle, settings)
    checks.extend({**check, "stage": stage} for check in report["checks"])
    if not report["ok"]:
        failed = next(check for check in report["checks"] if not check["ok"])
        raise CheckFailedError(failed["name"], failed["detail"])
    return report


def check_code(
    zip_path: Path,
    root: Path,
    names: list[str],
    manifest: dict[str, Any],
    checks: list[dict[str, Any]],
    building: bool,
    trust_code: bool,
) -> None:
    """Compare the bundle's runtime code with this project's before anything of it runs.

    Differing code runs only when this command bundled it (from the `--agents-dir` given) or
    with `--trust-code`, which says so first."""
    code = compare_bundle(root, names, manifest)
    detail = code.describe()
    if not code.identical and building:
        detail += "; bundled from --agents-dir as given"
    elif not code.identical and trust_code:
        print(TRUST_LINE, file=sys.stderr, flush=True)
        detail += "; run anyway (--trust-code)"
    elif not code.identical:
        detail += "; nothing of the bundle was run"
        checks.append({"name": "code", "stage": "zip", "ok": False, "detail": detail})
        raise CheckFailedError(
            "code",
            detail,
            "read the files named; if you trust that code, python submit.py --verify "
            f"{zip_path} --trust-code runs it, in a fresh isolated Python, as the evaluator will",
        )
    checks.append({"name": "code", "stage": "zip", "ok": True, "detail": detail})


def verify_zip(
    zip_path: Path,
    checks: list[dict[str, Any]],
    shown_as: str | None = None,
    building: bool = False,
    trust_code: bool = False,
) -> dict[str, Any]:
    """Extract safely, check every hash and whose code it is, then load and run the agent from
    the extracted copy; `building` says this command bundled the code, `trust_code` to run it
    even if it is not this project's."""
    with temporary_folder("verify") as folder:
        root = Path(folder)
        try:
            names = safe_extract(zip_path, root)
            manifest = check_extracted(root, names)
            settings = ProbeSettings(**manifest["validation"]["settings"])
        except (BundleError, KeyError, TypeError) as error:
            raise CheckFailedError("bundle", f"{zip_path}: {error}") from error
        checks.append(
            {
                "name": "bundle",
                "stage": "zip",
                "ok": True,
                "detail": f"{shown_as or zip_path.name}: {len(names)} entries inside the folder, "
                f"{len(manifest['files'])} SHA-256 hashes match the manifest",
            }
        )
        check_code(zip_path, root, names, manifest, checks, building, trust_code)
        report = probe_or_fail(root, settings, checks, "zip")
    scores = {check["name"]: check for check in report["checks"]}["score"]
    recorded = manifest["validation"]["score"]
    if (scores["mean"], scores["min"]) != (recorded["mean"], recorded["min"]):
        raise CheckFailedError("bundle", f"scores from the zip {scores} differ from the manifest's")
    return manifest
