"""Runs of tests/test_tags.py compared bit for bit with stored results: ``python -m tests.stored_runs OUT METHOD...``.

A subprocess, so that it compiles at XLA's default optimisation level as the stored runs were (the suite's own
processes compile at level 0: tests/conftest.py). Writes OUT (JSON): each method's run of seed 0 alone (a looped
member is exactly its run alone: test_parallel, so it is the stored run's member 0).
"""

import json
import sys
import tempfile

from adjax import train
from tests.test_train import tiny_config


def main(out: str, methods: list[str]) -> None:
  runs = {m: train.train_and_evaluate(tiny_config(m, num_seeds=1), tempfile.mkdtemp()) for m in methods}
  with open(out, 'w') as f:
    json.dump(runs, f)


if __name__ == '__main__':
  main(sys.argv[1], sys.argv[2:])
