"""Studio Runner's benchmarks: ratios against a named peer (nbclient, papermill) measured in
the same run. ``python -m bench`` from the repo root; see bench/README.md."""
