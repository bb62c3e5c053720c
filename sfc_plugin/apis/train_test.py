"""tools/train.py and tools/test.py: their argument parsers, the mmengine Config they build from a config file and
the command line, and the Runner they run."""
import argparse
import os
import os.path as osp
from typing import List, Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from sfc_plugin.utils import load_model_weights
from .inference import load_config


def train_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Train a model with an sfc_plugin config')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and checkpoints')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint; with no path, from the latest one in the work dir')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument('--no-validate', action='store_true', help='skip validation during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the actual batch size')
    _add_launch_options(parser, 'train_cfg.max_iters=100', 'job launcher')
    return parser


def test_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Evaluate label propagation or image-pair matching with an '
                                                 'sfc_plugin config')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='model checkpoint (omit when the config initialises every weight)')
    parser.add_argument('--work-dir', help='the dir to save logs and metric results')
    parser.add_argument('--unsafe-pickle', action='store_true',
                        help='load a checkpoint that is a full pickle (runs code: trusted files only)')
    parser.add_argument('--out-dir', help='write predictions: indexed PNGs DIR/<video>/<frame>.png (videos) or '
                                          'DIR/<pair_id>.json (image pairs)')
    _add_launch_options(parser, 'model.propagation.topk=10', 'job launcher (videos are spread over the processes)')
    return parser


def _add_launch_options(parser: argparse.ArgumentParser, override_example: str, launcher_help: str) -> None:
    """``--cfg-options``, ``--launcher`` and ``--local-rank``, as every OpenMMLab tool has them."""
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help=f'override config settings, e.g. {override_example}')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none', help=launcher_help)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def _common_config(args: argparse.Namespace) -> Config:
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def build_train_config(args: argparse.Namespace) -> Config:
    """Merge command-line options into the training config."""
    cfg = _common_config(args)
    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper in ('AmpOptimWrapper', 'mmengine.AmpOptimWrapper'):
            raise ValueError('--amp given but the config already uses AmpOptimWrapper')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.auto_scale_lr:
        cfg.setdefault('auto_scale_lr', dict(enable=True, base_batch_size=96)).enable = True
    return cfg


def build_test_config(args: argparse.Namespace) -> Config:
    """Merge command-line options into the test config."""
    cfg = _common_config(args)
    cfg.load_from = None  # tools/test.py loads the checkpoint itself, strictly (see `test`)
    if args.out_dir is not None:
        cfg.model.out_dir = args.out_dir
    return cfg


def close_distributed() -> None:
    """Wait for every process, then tear the process group down (a gloo rank that exits with its group
    alive can abort in its worker threads: 'terminate called without an active exception')."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def train(argv: Optional[List[str]] = None) -> Runner:
    """Entry point of tools/train.py."""
    import sfc_plugin  # noqa: F401  (registers the plugin and the checkpoint safe globals)
    from sfc_plugin.engine import setup_cpu_distributed
    cfg = build_train_config(train_arg_parser().parse_args(argv))
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    close_distributed()
    return runner


def test(argv: Optional[List[str]] = None) -> dict:
    """Entry point of tools/test.py; returns the metrics.

    The checkpoint is loaded strictly (weights_only, every key must match, mismatches listed);
    without one, the model's ``init_cfg`` (e.g. ``StrictPretrained`` per branch) initialises it.
    """
    import sfc_plugin  # noqa: F401
    from sfc_plugin.engine import setup_cpu_distributed
    args = test_arg_parser().parse_args(argv)
    cfg = build_test_config(args)
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    if args.checkpoint is None:
        model.init_weights()
    else:
        load_model_weights(model, args.checkpoint, allow_pickle=args.unsafe_pickle)
        runner.logger.info(f'Loaded {args.checkpoint}')
    metrics = runner.test()
    close_distributed()
    return metrics
