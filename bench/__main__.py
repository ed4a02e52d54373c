"""``python -m bench [NAME...]``: run the benchmarks (all by default), print a table, write JSON.

    python -m bench                  # all of them, in order (~4-5 min on 2 cores)
    python -m bench cells output     # a selection
    python -m bench cells --cells 200 --repeat 5
    python -m bench --list

Results go to bench/results/bench-<time>.json and bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback

import localstudio  # noqa: F401  (puts lambdas/ on sys.path)

from . import cells, endtoend, live, longcell, output
from .common import BenchResult, machine, table, write_json

BENCHMARKS = {
    "cells": cells,
    "output": output,
    "run": endtoend,
    "live": live,
    "longcell": longcell,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)}")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--no-json", action="store_true", help="do not write bench/results/")
    for name, module in BENCHMARKS.items():
        group = parser.add_argument_group(f"{name} options")
        module.add_arguments(group)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        for name, module in BENCHMARKS.items():
            print(f"{name:<9} {(module.__doc__ or '').strip().splitlines()[0]}")
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    names = args.names or list(BENCHMARKS)
    info = machine()
    print(f"machine: {info['cpus']} cpus, load {info['loadavg']}, Python {info['python']}, "
          f"jupyter_server {info['jupyter_server']}, ipykernel {info['ipykernel']}, "
          f"nbclient {info['nbclient']}, papermill {info.get('papermill', '-')}", flush=True)
    results: list[BenchResult] = []
    for name in names:
        print(f"== {name} …", flush=True)
        started = time.perf_counter()
        try:
            result = BENCHMARKS[name].run(args)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            result = BenchResult(name, error=f"{type(exc).__name__}: {exc}")
        result.seconds = time.perf_counter() - started
        results.append(result)
        print(table([result]), flush=True)
        print(f"   ({result.seconds:.1f} s)\n", flush=True)
    info["loadavg_after"] = [round(x, 2) for x in __import__("os").getloadavg()]
    print("== summary")
    print(table(results))
    if not args.no_json:
        path = write_json(results, info)
        print(f"\nJSON: {path.relative_to(path.parents[2])}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
