"""Propagate a first-frame mask through a video: python tools/propagate.py VIDEO MASK --out DIR ... (same as
the sfc-propagate command; --demo runs the built-in model on a bundled clip)."""
import sys

from sfc_plugin.runtime.cli import main

if __name__ == '__main__':
    sys.exit(main())
