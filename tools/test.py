"""Evaluate label propagation: python tools/test.py CONFIG [CHECKPOINT] [--out-dir DIR] ..."""
from sfc_plugin.apis import test

if __name__ == '__main__':
    test()
