"""Write the offline FC training set (scikit-image photos + bikes.mp4 frames 0-124) and its list.

    python tools/make_fc_training_data.py --out data/fc_offline
"""
import argparse

from sfc_plugin.datasets.offline_data import write_fc_training_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('--out', default='data/fc_offline', help='output folder')
    args = parser.parse_args()
    print(write_fc_training_set(args.out))


if __name__ == '__main__':
    main()
