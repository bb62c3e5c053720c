"""Render every benchmark result record (``docs/results/*.json``) as Markdown beside it.

    python tools/write_results.py [--dir docs/results]

The benchmarks write the records (``--json`` of ``tools/benchmark_pairs.py``, ...); the tables in
``docs/results/*.md`` are only ever written by this script.
"""
import argparse

from sfc_plugin.benchmarks.results import render_folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('--dir', default='docs/results', help='folder of result records')
    args = parser.parse_args()
    for path in render_folder(args.dir):
        print(path)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
