"""Write the offline FC training set and its list.

    # scikit-image photos + bikes.mp4 frames 0-124 (137 images)
    python tools/make_fc_training_data.py --out data/fc_offline
    # ... + opencv-doc's natural photos and the 270 frames of Megamind.avi (445 images)
    python tools/make_fc_training_data.py --out data/fc_offline_v2 \
        --opencv-data DIR/usr/share/doc/opencv-doc/examples/data
"""
import argparse

from sfc_plugin.generators.offline_data import write_fc_training_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('--out', default='data/fc_offline', help='output folder')
    parser.add_argument('--opencv-data', default=None,
                        help="opencv-doc's unpacked data folder: adds its photos and Megamind.avi")
    args = parser.parse_args()
    print(write_fc_training_set(args.out, opencv_data_dir=args.opencv_data))


if __name__ == '__main__':
    main()
