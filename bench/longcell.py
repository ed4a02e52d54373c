"""longcell: TODO."""
from __future__ import annotations
import argparse
from .common import BenchResult
def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass
def run(args: argparse.Namespace) -> BenchResult:
    raise NotImplementedError
