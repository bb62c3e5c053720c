"""Benchmark sfc-propagate: end-to-end frames/s and peak memory per backend at the demo size and 480p, next to
the backbone and propagation core alone (one JSON object on stdout).

    python tools/benchmark_runtime.py                      # ~10 minutes on 2 cores
    python tools/benchmark_runtime.py --frames-480p 10 --memory-frames
"""
from sfc_plugin.benchmarks.runtime import main

if __name__ == '__main__':
    main()
