"""The state machine's definition (``runner.asl.json``, Amazon States Language): what CDK deploys
(``infra/runner.py``) and what the local stack runs in moto, the same file; package data."""

from pathlib import Path

DEFINITION = Path(__file__).resolve().parent / "runner.asl.json"
