"""``python -m bench.bundle``: the Lambda bundle's size and each handler's cold import.

    .venv/bin/python -m bench.bundle                          # build the bundle, then measure
    .venv/bin/python -m bench.bundle --bundle build/bundle    # measure an existing bundle
    .venv/bin/python -m bench.bundle --repeat 9 --python .venv313/bin/python

The bundle is built exactly as ``cdk synth`` builds the asset (``infra.bundling``), zipped
with deflate (as the CDK asset zip), and each handler module is imported in a fresh
``python3.13 -S`` process (no site-packages) with only the bundle on ``PYTHONPATH`` and, after
it, what the Lambda runtime provides (boto3, botocore, s3transfer, jmespath and their
dependencies, linked from ``--python``'s site-packages). Nothing else: a test venv's extras
change what gets imported (jupyter_server's jsonschema extras make nbformat's import load a
grammar, seconds that a Lambda never spends). The clock covers the ``import``
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
            "s3_trigger", "execution_ended", "notify", "webhook")
#: The RenderPage function's own bundle (infra.bundling.RENDER: the steps' plus nbconvert).
RENDER_HANDLERS = ("render_page",)
ZIP_TARGET_BYTES = 5 * 1000 * 1000
IMPORT_TARGET_MS = 400.0
_PROBE = ("import time; t, c = time.perf_counter(), time.process_time(); import studiorunner.steps.{name}; "
          "print((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000)")


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


# What the python3.13 Lambda runtime ships besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")


def runtime_packages(python: str, into: Path) -> Path:
    """A folder of links to the runtime-provided packages in ``python``'s site-packages."""
    site = subprocess.run([python, "-c", "import boto3, pathlib; print(pathlib.Path(boto3.__file__).parent.parent)"],
                          check=True, capture_output=True, text=True).stdout.strip()
    into.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        source = Path(site) / name
        if source.exists():
            (into / name).symlink_to(source)
    return into


def cold_import_ms(python: str, bundle: Path, provided: Path, name: str, *, repeat: int,
                   with_pyc: bool) -> tuple[float, float]:
    """(wall, CPU) ms of the import, medians: on a shared, loaded machine CPU is the fairer figure."""
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as empty:
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": f"{bundle}{os.pathsep}{provided}",
               "PYTHONDONTWRITEBYTECODE": "1",
               "POWERTOOLS_SERVICE_NAME": "studio-runner", "AWS_DEFAULT_REGION": "eu-west-1"}
        if not with_pyc:
            env["PYTHONPYCACHEPREFIX"] = empty
        for _ in range(repeat):
            done = subprocess.run([python, "-S", "-c", _PROBE.format(name=name)], env=env, check=True,
                                  capture_output=True, text=True)
            wall, cpu = done.stdout.strip().splitlines()[-1].split()
            walls.append(float(wall))
            cpus.append(float(cpu))
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bundle", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, help="an existing bundle folder (default: build one in a temp dir)")
    parser.add_argument("--python", help="the runtime's Python with boto3 (default: .venv313/bin/python)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--variant", choices=("main", "render"), default="main",
                        help="main: every step's bundle; render: RenderPage's (plus nbconvert)")
    parser.add_argument("--handlers", nargs="*", help="only these handlers (default: the variant's)")
    args = parser.parse_args(argv)
    handlers = args.handlers or (RENDER_HANDLERS if args.variant == "render" else HANDLERS)

    venv313 = Path(".venv313/bin/python")
    python = args.python or (str(venv313) if venv313.exists() else runtime_python(runtime_python_version()))
    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle.resolve() if args.bundle else build_bundle(Path(tmp) / "bundle", args.variant)
        zipped, unpacked = zip_size(bundle)
        provided = runtime_packages(python, Path(tmp) / "runtime")
        print(f"bundle: {bundle}")
        print(f"zip {zipped / 1e6:.2f} MB (target < {ZIP_TARGET_BYTES / 1e6:.0f} MB: "
              f"{'met' if zipped < ZIP_TARGET_BYTES else 'NO'}), unpacked {unpacked / 1e6:.1f} MB")
        print(f"cold import, median of {args.repeat} fresh processes of {python}:")
        print(f"  {'handler':<18}{'.pyc wall':>11}{'.pyc CPU':>11}{'no .pyc wall':>14}{'no .pyc CPU':>13}")
        worst = 0.0
        for name in handlers:
            if not (bundle / "studiorunner" / "steps" / f"{name}.py").is_file():
                print(f"  {name:<18}(not in this bundle)")
                continue
            with_pyc = cold_import_ms(python, bundle, provided, name, repeat=args.repeat, with_pyc=True)
            without = cold_import_ms(python, bundle, provided, name, repeat=args.repeat, with_pyc=False)
            worst = max(worst, with_pyc[1])
            print(f"  {name:<18}{with_pyc[0]:>8.0f} ms{with_pyc[1]:>8.0f} ms{without[0]:>11.0f} ms{without[1]:>10.0f} ms")
        print(f"slowest with .pyc: {worst:.0f} ms CPU (target <= {IMPORT_TARGET_MS:.0f} ms: "
              f"{'met' if worst <= IMPORT_TARGET_MS else 'NO'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
