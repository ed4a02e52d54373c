"""``python -m bench.bundle``: the Lambda bundle's size and each handler's cold import.

    .venv/bin/python -m bench.bundle                          # build the bundle, then measure
    .venv/bin/python -m bench.bundle --bundle build/bundle    # measure an existing bundle
    .venv/bin/python -m bench.bundle --repeat 9 --python .venv313/bin/python

The bundle is built exactly as ``cdk synth`` builds the asset (``infra.bundling``), zipped
with deflate (as the CDK asset zip), and each handler module is imported in a fresh
``python3.13`` process with only the bundle on ``PYTHONPATH`` (plus the interpreter's own
site-packages, which stands in for the runtime's boto3). The clock covers the ``import``
statement only: what an INIT phase adds to the interpreter's own start. Median of
``--repeat`` processes, once with the bundle's .pyc files and once without them
(``PYTHONPYCACHEPREFIX`` set to an empty folder, so every module is compiled in memory).

Targets (issue 11): zip < 5 MB, cold import <= 400 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from infra.bundling import build_bundle, runtime_python, runtime_python_version

HANDLERS = ("prepare", "start_target", "run_commands", "start_kernel", "run_cells", "cleanup",
            "s3_trigger", "execution_ended")
ZIP_TARGET_BYTES = 5 * 1000 * 1000
IMPORT_TARGET_MS = 400.0
_PROBE = ("import time; t = time.perf_counter(); import steps.{name}; "
          "print((time.perf_counter() - t) * 1000)")


def zip_size(bundle: Path) -> tuple[int, int]:
    """(zip bytes, unpacked bytes) of the bundle's files, deflated."""
    unpacked = 0
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "bundle.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(p for p in bundle.rglob("*") if p.is_file() and p.name != ".built"):
                unpacked += path.stat().st_size
                zf.write(path, path.relative_to(bundle).as_posix())
        return archive.stat().st_size, unpacked


def cold_import_ms(python: str, bundle: Path, name: str, *, repeat: int, with_pyc: bool) -> float:
    samples = []
    with tempfile.TemporaryDirectory() as empty:
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(bundle), "PYTHONDONTWRITEBYTECODE": "1",
               "POWERTOOLS_SERVICE_NAME": "studio-runner", "AWS_DEFAULT_REGION": "eu-west-1"}
        if not with_pyc:
            env["PYTHONPYCACHEPREFIX"] = empty
        for _ in range(repeat):
            done = subprocess.run([python, "-c", _PROBE.format(name=name)], env=env, check=True,
                                  capture_output=True, text=True)
            samples.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bundle", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, help="an existing bundle folder (default: build one in a temp dir)")
    parser.add_argument("--python", help="the runtime's Python with boto3 (default: .venv313/bin/python)")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)

    venv313 = Path(".venv313/bin/python")
    python = args.python or (str(venv313) if venv313.exists() else runtime_python(runtime_python_version()))
    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle.resolve() if args.bundle else build_bundle(Path(tmp) / "bundle")
        zipped, unpacked = zip_size(bundle)
        print(f"bundle: {bundle}")
        print(f"zip {zipped / 1e6:.2f} MB (target < {ZIP_TARGET_BYTES / 1e6:.0f} MB: "
              f"{'met' if zipped < ZIP_TARGET_BYTES else 'NO'}), unpacked {unpacked / 1e6:.1f} MB")
        print(f"cold import, median of {args.repeat} fresh processes of {python}:")
        print(f"  {'handler':<18}{'with .pyc':>12}{'without':>12}")
        worst = 0.0
        for name in HANDLERS:
            with_pyc = cold_import_ms(python, bundle, name, repeat=args.repeat, with_pyc=True)
            without = cold_import_ms(python, bundle, name, repeat=args.repeat, with_pyc=False)
            worst = max(worst, with_pyc)
            print(f"  {name:<18}{with_pyc:>9.0f} ms{without:>9.0f} ms")
        print(f"slowest with .pyc {worst:.0f} ms (target <= {IMPORT_TARGET_MS:.0f} ms: "
              f"{'met' if worst <= IMPORT_TARGET_MS else 'NO'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
