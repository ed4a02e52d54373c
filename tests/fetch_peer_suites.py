"""Fetch the peer suites where ``../shared/peer-suites`` is absent (a clone on its own, as CI's).

``python tests/fetch_peer_suites.py DEST`` writes ``DEST/nbclient`` and ``DEST/papermill`` from the
source distributions on PyPI of the peers pinned in requirements-dev.txt: the same files as
``../shared/peer-suites`` (byte for byte: nbclient 0.11.0's ``tests/files``, papermill 2.7.0's
``papermill/tests/notebooks`` — only the notebooks the shared folder has — and each LICENSE).
Without them the nbclient and papermill conformance tests would skip on such a clone.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: papermill's notebooks the peer suites hold (its sdist has more, which our tests do not read).
PAPERMILL_NOTEBOOKS = {
    "broken1.ipynb", "complex_parameters.ipynb", "keyboard_interrupt.ipynb", "line_magic_error.ipynb",
    "no_parameters.ipynb", "result_no_exec.ipynb", "simple_execute.ipynb", "sysexit.ipynb", "sysexit0.ipynb",
    "sysexit1.ipynb", "systemexit.ipynb", "test_logging.ipynb",
}


def pinned(name: str) -> str:
    match = re.search(rf"^{name}==(\S+)$", (REPO / "requirements-dev.txt").read_text(), re.M)
    if not match:
        raise SystemExit(f"{name} is not pinned in requirements-dev.txt")
    return match.group(1)


def main(dest: Path) -> None:
    versions = {name: pinned(name) for name in ("nbclient", "papermill")}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--no-binary", ":all:", "-d", tmp,
                        *(f"{name}=={version}" for name, version in versions.items())], check=True)
        wanted = {
            "nbclient": (f"nbclient-{versions['nbclient']}/tests/files/", None),
            "papermill": (f"papermill-{versions['papermill']}/papermill/tests/notebooks/", PAPERMILL_NOTEBOOKS),
        }
        for suite, (folder, only) in wanted.items():
            top = folder.split("/", 1)[0]
            out = dest / suite
            out.mkdir(parents=True, exist_ok=True)
            with tarfile.open(next(Path(tmp).glob(f"{top}.tar.gz"))) as sdist:
                for member in sdist.getmembers():
                    name = member.name.rsplit("/", 1)[-1]
                    inside = member.name.startswith(folder) and "/" not in member.name[len(folder):]
                    if member.isfile() and ((inside and (only is None or name in only))
                                            or member.name == f"{top}/LICENSE"):
                        (out / name).write_bytes(sdist.extractfile(member).read())  # type: ignore[union-attr]
    print(f"peer suites from PyPI (nbclient {versions['nbclient']}, papermill {versions['papermill']}) in {dest}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
