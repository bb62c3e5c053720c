"""Training throughput of FC configs: images/s and the share of time spent waiting for data.

    python tools/benchmark_train.py configs/fc/fc_r18_tiny_cpu.py configs/fc/fc_r18_1xb96-60k_ytvos.py \
        [--data-root DIR] [--iters 10] [--batch-size 8]

Without --data-root, scikit-image's real photos are written to a temporary folder. Prints one
JSON object with a row per config and the CPU it ran on.
"""
import argparse
import json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--data-root', help='folder of training images (default: scikit-image photos)')
    parser.add_argument('--iters', type=int, default=10, help='measured iterations per config')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--batch-size', type=int, help="override the configs' batch size")
    parser.add_argument('--num-workers', type=int, help="override the configs' dataloader workers")
    args = parser.parse_args()

    from sfc_plugin.benchmarks.train import training_report
    report = training_report(args.configs, args.data_root, args.iters, args.warmup, args.batch_size, args.num_workers)
    print(json.dumps(report, indent=2))


if __name__ == '__main__':
    main()
