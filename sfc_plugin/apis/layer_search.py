"""Label-free choice of the hyperpixel layers of the pair matcher: beam search on the cycle loss.

As in Xiao et al. (IJCV 2022), the layers are chosen without ground truth: each candidate set of
backbone layers is scored by the cross-instance cycle loss (``CrossInstanceCycle``) of its
hyperpixel features on unlabelled same-category validation pairs, with the same attention-centred
crops (fixed seeds) for every set and no training. Beam search: score every single layer, keep the
``beam`` best sets, extend each by one more candidate, score, keep the best ``beam``, ... up to
``max_layers``; the set with the lowest loss over all steps wins.
"""
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.utils import ProgressBar
from torch import Tensor, nn

from sfc_plugin.datasets.cycle_pairs import read_pair, same_category_pairs
from sfc_plugin.datasets.image_datasets import evenly_spaced_indices
from sfc_plugin.models.selfsup.cycle import CrossInstanceCycle, hyperpixels, layer_outputs
from .inference import init_model, load_config

LayerSet = Tuple[str, ...]


def load_pairs(data_root: str, split: str, size: int, max_pairs: Optional[int]) -> Tuple[Tensor, List[tuple]]:
    """uint8 (N, 2, 3, size, size) of at most ``max_pairs`` evenly spaced pairs of ``data_root`` and the pairs."""
    pairs = same_category_pairs(data_root, split)
    pairs = [pairs[index] for index in evenly_spaced_indices(len(pairs), max_pairs)]
    return torch.stack([read_pair(source, target, size) for source, target, _ in pairs]), pairs


@torch.no_grad()
def cycle_losses(backbone: nn.Module, cycle: CrossInstanceCycle, images: Tensor, layer_sets: Sequence[LayerSet],
                 batch_size: int = 4, seed: int = 0, progress: bool = True) -> List[float]:
    """Mean cycle MSE (pixels^2) of each layer set over ``images`` (N, 2, 3, P, P) normalised (source,
    target) pairs. Batch k's flips, rotations and crops come from seed ``seed + k`` and the attention
    of ``cycle.attention_layer``, so they are the same for every set."""
    layers = sorted({name for layer_set in layer_sets for name in layer_set})
    totals = [0.0] * len(layer_sets)
    batches = images.split(batch_size)
    bar = ProgressBar(len(batches), file=sys.stderr) if progress else None
    for index, batch in enumerate(batches):
        source, target = batch[:, 0], batch[:, 1]
        *source_maps, attention = layer_outputs(backbone, source, layers + [cycle.attention_layer])
        crops = cycle.sample_crops(attention, source.shape[-2:], torch.Generator().manual_seed(seed + index))
        crop_maps = layer_outputs(backbone, cycle.crop(source, crops), layers)
        target_maps = layer_outputs(backbone, target, layers)
        for set_index, layer_set in enumerate(layer_sets):
            chosen = [layers.index(name) for name in layer_set]
            crop_features = hyperpixels([crop_maps[i] for i in chosen])
            prediction = cycle.walk(crop_features, hyperpixels([target_maps[i] for i in chosen]),
                                    hyperpixels([source_maps[i] for i in chosen]), source.shape[-2:])
            labels = cycle.labels(crops, crop_features.shape[-2:], source.shape[-2:])
            totals[set_index] += float(((prediction - labels) ** 2).mean()) * len(batch)
        if bar is not None:
            bar.update()
    if bar is not None:
        sys.stderr.write('\n')
    return [total / len(images) for total in totals]


def beam_search(evaluate: Callable[[List[LayerSet]], List[float]], candidates: Sequence[str], beam: int = 3,
                max_layers: int = 4) -> List[Dict]:
    """Rows ``dict(step, layers, loss)`` of every set scored, best first within each step.

    Sets list their layers in the order of ``candidates`` (the first one's map is the hyperpixels'
    resolution). Step 1 scores each candidate alone; step s extends each of the ``beam`` best sets of
    step s - 1 by one candidate it lacks. ``evaluate`` scores a list of sets (lower is better).
    """
    if len(set(candidates)) != len(candidates) or not candidates:
        raise ValueError(f'layer search: candidates must be distinct layer names, got {list(candidates)}')
    if beam < 1 or max_layers < 1:
        raise ValueError(f'layer search: beam and max_layers must be >= 1, got {beam} and {max_layers}')
    order = {name: index for index, name in enumerate(candidates)}
    rows: List[Dict] = []
    frontier: List[LayerSet] = [()]
    for step in range(1, max_layers + 1):
        layer_sets = sorted({tuple(sorted(base + (name,), key=order.get))
                             for base in frontier for name in candidates if name not in base},
                            key=lambda layer_set: [order[name] for name in layer_set])
        if not layer_sets:
            break
        losses = evaluate(layer_sets)
        step_rows = sorted((dict(step=step, layers=list(layer_set), loss=loss)
                            for layer_set, loss in zip(layer_sets, losses)), key=lambda row: row['loss'])
        rows += step_rows
        frontier = [tuple(row['layers']) for row in step_rows[:beam]]
    return rows


def best_row(rows: Sequence[Dict]) -> Dict:
    """The row with the lowest loss (the earlier step, i.e. the fewer layers, on a tie)."""
    return min(rows, key=lambda row: (row['loss'], row['step']))


def search_layers(backbone: nn.Module, cycle: CrossInstanceCycle, images: Tensor, candidates: Sequence[str],
                  beam: int = 3, max_layers: int = 4, batch_size: int = 4, seed: int = 0,
                  progress: bool = True) -> List[Dict]:
    """Beam search of hyperpixel layers of ``backbone`` (eval mode) on normalised pairs ``images``
    (N, 2, 3, P, P); returns the rows of :func:`beam_search`."""
    modules = dict(backbone.named_modules())
    unknown = [name for name in list(candidates) + [cycle.attention_layer] if name not in modules]
    if unknown:
        raise ValueError(f'layer search: no submodule {", ".join(unknown)} in the backbone; some that exist: '
                         f'{", ".join(name for name in list(modules)[1:40])}')
    backbone.eval()
    return beam_search(lambda layer_sets: cycle_losses(backbone, cycle, images, layer_sets, batch_size, seed, progress),
                       candidates, beam, max_layers)


def run_layer_search(config: str, checkpoint: Optional[str], images: str, candidates: Sequence[str],
                     split: str = 'val', beam: int = 3, max_layers: int = 4, pair_size: Optional[int] = None,
                     max_pairs: Optional[int] = 32, batch_size: int = 4, seed: int = 0,
                     cycle_options: Optional[dict] = None, cfg_options: Optional[dict] = None,
                     progress: bool = True) -> Dict:
    """The layer search of ``tools/search_layers.py``: the model of ``config`` (+ ``checkpoint``), its
    ``backbone``, its ``cycle`` settings (a MoCo + cycle config; else ``CrossInstanceCycle``'s defaults)
    updated with ``cycle_options``, its data preprocessor's normalisation (else RGB in [0, 1], as the
    pair matcher's backbones take), pairs of ``images`` at ``pair_size`` (default: the config's
    ``CyclePairDataset`` pair size, else 224). Returns the settings, every row and the best set."""
    cfg: Config = load_config(config, cfg_options)
    model = init_model(cfg, cfg.model, checkpoint)
    cycle_cfg = dict(cfg.model.get('cycle') or {}, **(cycle_options or {}))
    cycle_cfg.pop('type', None)
    cycle = CrossInstanceCycle(**cycle_cfg)
    if pair_size is None:
        pair_size = cfg.get('train_dataloader', {}).get('dataset', {}).get('pair_size', 224)
    pairs, listed = load_pairs(images, split, pair_size, max_pairs)
    preprocessor = getattr(model, 'data_preprocessor', None)
    if hasattr(preprocessor, 'normalise_pair'):
        normalised = torch.stack([preprocessor.normalise_pair(pair) for pair in pairs])
    else:
        normalised = pairs.float() / 255
    rows = search_layers(model.backbone, cycle, normalised, candidates, beam, max_layers, batch_size, seed, progress)
    best = best_row(rows)
    return dict(config=config, checkpoint=checkpoint, images=images, split=split, num_pairs=len(listed),
                pair_size=pair_size, seed=seed, beam=beam, max_layers=max_layers, candidates=list(candidates),
                cycle=dict(attention_layer=cycle.attention_layer, crop_size=cycle.crop_size,
                           rotation=cycle.rotation, flip_prob=cycle.flip_prob, temperature=cycle.temperature,
                           label=cycle.label),
                rows=rows, layers=best['layers'], loss=best['loss'])
