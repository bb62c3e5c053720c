"""Export SFC models: python export/sfc_export.py onnx|tensorrt|check ... (same as the sfc-export command)."""
import sys

from sfc_plugin.deploy.cli import main

if __name__ == '__main__':
    sys.exit(main())
