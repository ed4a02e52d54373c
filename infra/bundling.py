"""The Lambda code asset: ``lambdas/`` plus its requirements, bundled without Docker.

``pip install --platform manylinux2014_x86_64 --only-binary=:all:`` fetches wheels built for
the Lambda runtime whatever this machine runs. When ``build/wheelhouse/<runtime>/`` exists
(``python -m infra.bundling download`` fills it, ``make synth`` runs that first) pip
installs from it with ``--no-index``, so ``cdk synth`` itself needs no network. CDK keeps
each bundle in ``cdk.out`` under the hash of ``lambdas/``, so an unchanged tree is not
bundled again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "lambdas"
WHEELHOUSE = ROOT / "build" / "wheelhouse"

# The Python the Lambda-side tests run on (`make test` runs them under 3.13 against the built
# bundle): the runtime we deploy is the one we test.
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.X86_64
PLATFORM = "manylinux2014_x86_64"

# Not code the Lambda runs: kept out of the asset and out of its hash.
EXCLUDE = ["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/*.egg-info", "**/.DS_Store"]
# The runtime ships boto3 and botocore; a bundled botocore (aws-xray-sdk pulls it in) would
# shadow the runtime's and could mismatch its boto3.
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")
# Parts of the installed packages no step imports, removed to keep the zip under 5 MB
# (bench/README.md). `make test` runs the Lambda-side tests against the pruned bundle, so an
# import of something pruned here fails there, not in a deployed run.
PRUNED = (
    "aws_lambda_powertools/event_handler",
    *(f"aws_lambda_powertools/utilities/{name}" for name in (
        "auth_alpha", "batch", "circuit_breaker", "data_masking", "feature_flags", "idempotency",
        "kafka", "parameters", "parser", "streaming", "validation")),
    "wrapt-stubs",
)
# Test suites and benchmarks that some wheels ship inside the package.
PRUNED_DIR_NAMES = ("tests", "benchmarks")

#: The bundles: every function's (``lambdas/requirements.txt``), and RenderPage's, which adds
#: nbconvert (``lambdas/requirements-render.txt``) so that its weight burdens no other step.
MAIN, RENDER = "main", "render"
REQUIREMENTS = {MAIN: "requirements.txt", RENDER: "requirements-render.txt"}


def runtime_python_version() -> str:
    """'3.14' for python3.14."""
    return RUNTIME.name.removeprefix("python")


def wheelhouse_dir() -> Path:
    return WHEELHOUSE / RUNTIME.name


def _pip_target_args(python_version: str) -> list[str]:
    return ["--platform", PLATFORM, "--implementation", "cp", "--python-version", python_version,
            "--only-binary=:all:"]


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """Installs ``requirements.txt`` for the Lambda platform, copies the code, compiles .pyc."""

    def __init__(self, *, source: Path, python_version: str, wheelhouse: Path | None,
                 variant: str = MAIN) -> None:
        self.source = source
        self.python_version = python_version
        self.wheelhouse = wheelhouse
        self.requirements = REQUIREMENTS[variant]

    def try_bundle(self, output_dir: str, *_options: Any, **_kw: Any) -> bool:
        out = Path(output_dir)
        self.install_requirements(out)
        shutil.copytree(self.source, out, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "*.egg-info"))
        self.compile(out)
        # Returning False would make CDK fall back to Docker; failures raise instead.
        return True

    def install_requirements(self, out: Path) -> None:
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                   "--no-compile", "--target", str(out), "-r", str(self.source / self.requirements),
                   *_pip_target_args(self.python_version)]
        if self.wheelhouse is not None and self.wheelhouse.is_dir():
            command += ["--no-index", "--find-links", str(self.wheelhouse)]
        result = subprocess.run(command, check=False, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"pip could not install lambdas/{self.requirements} for python{self.python_version}: "
                f"{result.stderr.strip()[-2000:]}\n(offline? run `python -m infra.bundling download` "
                "once with access to PyPI)")
        for name in PROVIDED_BY_RUNTIME:
            shutil.rmtree(out / name, ignore_errors=True)
            for info in out.glob(f"{name}-*.dist-info"):
                shutil.rmtree(info)
        shutil.rmtree(out / "bin", ignore_errors=True)
        for relative in PRUNED:
            shutil.rmtree(out / relative, ignore_errors=True)
        for package in [p for p in out.iterdir() if p.is_dir() and not p.name.endswith(".dist-info")]:
            for folder in [d for name in PRUNED_DIR_NAMES for d in package.rglob(name) if d.is_dir()]:
                shutil.rmtree(folder, ignore_errors=True)
            for stub in package.rglob("*.pyi"):
                stub.unlink()

    def compile(self, out: Path) -> None:
        """Write .pyc files for the runtime's Python (cold start: 0.36 s instead of 2.2 s).

        A .pyc is only used by the interpreter version that wrote it, so this needs the
        runtime's Python here; without it bundling fails rather than ship a bundle nobody
        tested. ``unchecked-hash`` because the asset zip carries fixed file times and
        /var/task is read-only: timestamp-checked .pyc files would be ignored.
        """
        python = runtime_python(self.python_version)
        subprocess.run([python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                        str(out)], check=True, capture_output=True)


def runtime_python(version: str) -> str:
    """A ``python<version>`` executable: this one, pyenv's, or on PATH (checked by running it).

    pyenv's shim answers "command not found" unless that version is selected, so pyenv's
    own install folders are looked at before PATH.
    """
    candidates = [sys.executable] if f"{sys.version_info.major}.{sys.version_info.minor}" == version else []
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += sorted((str(p) for p in pyenv_root.glob(f"versions/{version}.*/bin/python{version}")),
                         reverse=True)
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               check=False, capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    raise RuntimeError(f"no python{version} found (pyenv: `pyenv install {version}`): the Lambda bundle "
                       f"needs .pyc files compiled by the runtime's Python")


def build_bundle(out: Path, variant: str = MAIN) -> Path:
    """Bundle ``lambdas/`` into ``out`` exactly as the asset is built (for tests and bench)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    PipLocalBundling(source=LAMBDAS, python_version=runtime_python_version(),
                     wheelhouse=wheelhouse_dir(), variant=variant).try_bundle(str(out))
    return out


def lambda_code(*, bundle: bool, variant: str = MAIN) -> lambda_.Code:
    """The code asset of every function (``MAIN``), or of RenderPage (``RENDER``: plus nbconvert).

    ``bundle=False`` ships ``lambdas/`` as it is: for template tests, which look at the
    template, not at the zip, and should not spend seconds in pip.
    """
    if not bundle:
        return lambda_.Code.from_asset(str(LAMBDAS), exclude=EXCLUDE)
    local = PipLocalBundling(source=LAMBDAS, python_version=runtime_python_version(), wheelhouse=wheelhouse_dir(),
                             variant=variant)
    return lambda_.Code.from_asset(
        str(LAMBDAS), exclude=EXCLUDE,
        # The two bundles come from one folder: the bundling options (this environment
        # included) are part of the asset's hash, so theirs differ.
        bundling=BundlingOptions(image=RUNTIME.bundling_image, local=local,
                                 environment={"STUDIO_RUNNER_BUNDLE": variant}),
    )


def download_wheels() -> Path:
    """Fill the wheelhouse for the runtime (needs PyPI once; synth is offline after)."""
    target = wheelhouse_dir()
    target.mkdir(parents=True, exist_ok=True)
    for requirements in REQUIREMENTS.values():
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "-r", str(LAMBDAS / requirements), "-d", str(target),
                        *_pip_target_args(runtime_python_version())], check=True)
    return target


def main(argv: list[str]) -> None:
    if argv == ["download"]:
        sys.stdout.write(f"{download_wheels()}\n")
    elif len(argv) in (2, 3) and argv[0] == "bundle" and (len(argv) == 2 or argv[2] in REQUIREMENTS):
        sys.stdout.write(f"{build_bundle(Path(argv[1]), *argv[2:])}\n")
    else:
        sys.exit(f"usage: python -m infra.bundling download | bundle DIR [{' | '.join(REQUIREMENTS)}]")


if __name__ == "__main__":
    main(sys.argv[1:])
