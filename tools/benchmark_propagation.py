"""Benchmark the label-propagation core against the dense reference (one JSON object on stdout).

    python tools/benchmark_propagation.py                      # DAVIS geometry, ~3-5 minutes on 2 cores
    python tools/benchmark_propagation.py --height 30 --width 54 --frames 40 --repeats 1
"""
from sfc_plugin.benchmarks.propagation import main

if __name__ == '__main__':
    main()
