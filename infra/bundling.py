"""The Lambda code asset: ``lambdas/`` plus its requirements, bundled without Docker.

``pip install --platform manylinux2014_x86_64 --only-binary=:all:`` fetches wheels built for
the Lambda runtime whatever this machine runs. When ``build/wheelhouse/<runtime>/`` exists
(``python -m infra.bundling download`` fills it, ``make synth`` runs that first) pip
installs from it with ``--no-index``, so ``cdk synth`` itself needs no network. CDK keeps
each bundle in ``cdk.out`` under the hash of ``lambdas/``, so an unchanged tree is not
bundled again.
"""

from __future__ import annotations

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

# The newest Python runtime aws-cdk-lib 2.275 offers (a test checks no newer one exists).
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.X86_64
PLATFORM = "manylinux2014_x86_64"

# Not code the Lambda runs: kept out of the asset and out of its hash.
EXCLUDE = ["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/*.egg-info", "**/.DS_Store"]
# The runtime ships boto3 and botocore; a bundled botocore (aws-xray-sdk pulls it in) would
# shadow the runtime's and could mismatch its boto3.
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")


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

    def __init__(self, *, source: Path, python_version: str, wheelhouse: Path | None) -> None:
        self.source = source
        self.python_version = python_version
        self.wheelhouse = wheelhouse

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
                   "--no-compile", "--target", str(out), "-r", str(self.source / "requirements.txt"),
                   *_pip_target_args(self.python_version)]
        if self.wheelhouse is not None and self.wheelhouse.is_dir():
            command += ["--no-index", "--find-links", str(self.wheelhouse)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"pip could not install lambdas/requirements.txt for python{self.python_version}: "
                f"{result.stderr.strip()[-2000:]}\n(offline? run `python -m infra.bundling download` "
                "once with access to PyPI)")
        for name in PROVIDED_BY_RUNTIME:
            shutil.rmtree(out / name, ignore_errors=True)
            for info in out.glob(f"{name}-*.dist-info"):
                shutil.rmtree(info)
        shutil.rmtree(out / "bin", ignore_errors=True)

    def compile(self, out: Path) -> None:
        """Write .pyc files (cold start: 0.36 s instead of 2.2 s) when a matching Python exists.

        A .pyc is only used by the interpreter version that wrote it, so this needs the
        runtime's Python here. ``unchecked-hash`` because the asset zip carries fixed file
        times and /var/task is read-only: timestamp-checked .pyc files would be ignored.
        """
        python = self.matching_python()
        if python is None:
            sys.stderr.write(f"studio-runner bundling: no python{self.python_version} on PATH; "
                             "the Lambda bundle ships without .pyc files (slower cold starts)\n")
            return
        subprocess.run([python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                        str(out)], check=True, capture_output=True)

    def matching_python(self) -> str | None:
        if f"{sys.version_info.major}.{sys.version_info.minor}" == self.python_version:
            return sys.executable
        return shutil.which(f"python{self.python_version}")


def lambda_code(*, bundle: bool) -> lambda_.Code:
    """The one code asset every function uses.

    ``bundle=False`` ships ``lambdas/`` as it is: for template tests, which look at the
    template, not at the zip, and should not spend seconds in pip.
    """
    if not bundle:
        return lambda_.Code.from_asset(str(LAMBDAS), exclude=EXCLUDE)
    local = PipLocalBundling(source=LAMBDAS, python_version=runtime_python_version(), wheelhouse=wheelhouse_dir())
    return lambda_.Code.from_asset(
        str(LAMBDAS), exclude=EXCLUDE,
        bundling=BundlingOptions(image=RUNTIME.bundling_image, local=local),
    )


def download_wheels() -> Path:
    """Fill the wheelhouse for the runtime (needs PyPI once; synth is offline after)."""
    target = wheelhouse_dir()
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                    "-r", str(LAMBDAS / "requirements.txt"), "-d", str(target),
                    *_pip_target_args(runtime_python_version())], check=True)
    return target


if __name__ == "__main__":
    if sys.argv[1:] != ["download"]:
        sys.exit("usage: python -m infra.bundling download")
    sys.stdout.write(f"{download_wheels()}\n")
