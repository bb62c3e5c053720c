"""Training throughput of FC configs: images/s and the share of time spent waiting for data.

    python tools/benchmark_train.py configs/fc/fc_r18_tiny_cpu.py configs/fc/fc_r18_1xb96-60k_ytvos.py \
        [--data-root DIR] [--iters 10] [--batch-size 8]

Without --data-root, scikit-image's real photos are written to a temporary folder. Prints one
JSON object with a row per config and the CPU it ran on.
"""
import argparse
import contextlib
import json
import sys
import tempfile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--data-root', help='folder of training images (default: scikit-image photos)')
    parser.add_argument('--iters', type=int, default=10, help='measured iterations per config')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--batch-size', type=int, help="override the configs' batch size")
    parser.add_argument('--num-workers', type=int, help="override the configs' dataloader workers")
    args = parser.parse_args()

    from sfc_plugin.apis.benchmark_train import benchmark_training
    from sfc_plugin.propagation.benchmark import cpu_info
    data_root = args.data_root
    if data_root is None:
        from sfc_plugin.datasets.offline_data import write_skimage_photos
        data_root = tempfile.mkdtemp(prefix='sfc_photos_')
        write_skimage_photos(data_root, max_side=512)
    with contextlib.redirect_stdout(sys.stderr):  # mmengine's logs go to stderr, the report alone to stdout
        rows = [benchmark_training(config, data_root, args.iters, args.warmup, args.batch_size,
                                   args.num_workers) for config in args.configs]
    print(json.dumps(dict(data_root=data_root, cpu=cpu_info(), results=rows), indent=2))


if __name__ == '__main__':
    main()
