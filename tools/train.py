"""Train with an sfc_plugin config: python tools/train.py CONFIG [--work-dir W] [--resume] ..."""
from sfc_plugin.apis import train

if __name__ == '__main__':
    train()
