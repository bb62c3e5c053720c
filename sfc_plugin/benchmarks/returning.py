"""Whether an object that was hidden can be found again by its appearance, on a turning benchmark
(``tools/make_vos_benchmark.py --kind turning``, whose ``meta.json`` lists each video's hidden frames).

For each object that is hidden and comes back, two figures over the frames after its return:

- the propagation's mean IoU (%; the model's settings, the evaluation's core and codec);
- an appearance oracle: the object's *true* mask at one frame it was seen whole is the only memory, read
  for every cell without the radius (the long memory alone, :func:`.reference_propagate_step`). Recall (%): the
  share of the object's cells whose readout is the object; false cells: cells elsewhere whose readout is the
  object, per frame. Two memories: frame 0 (what the long memory holds) and the object's largest view before
  it was hidden (what an object memory of its last confident frame would hold).

Where the oracle gives the object a minority of its cells and false cells elsewhere, no memory of the object's
appearance read through these features can bring it back.
"""
import os
from typing import Dict, List, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.utils import ProgressBar
from torch import Tensor

from sfc_plugin.datasets import DAVISDataset
from sfc_plugin.propagation import (MaskCodec, PropagationSettings, TiledPropagator, VideoLabelLoop,
                                    network_input_size, reference_propagate_step)
from sfc_plugin.utils import prepare_image, read_image, read_json, read_label_png

COLUMNS = (('video', 'video'), ('object', 'object'), ('hidden', 'hidden frames'), ('back', 'frames back'),
           ('propagated_iou', 'propagated IoU (%)'), ('frame0_recall', 'oracle frame 0: recall (%)'),
           ('frame0_false_cells', 'false cells'), ('view_frame', 'largest view'), ('view_recall', 'recall (%)'),
           ('view_false_cells', 'false cells'))


def cell_labels(label_map: np.ndarray, num_labels: int, feat_size: Sequence[int]) -> Tensor:
    """(K, h, w) share of each label in each feature cell (area average of the one-hot (H, W) map): the truth
    per cell. The propagation encodes an annotation differently (``mask_to_soft_labels``: bilinear, as the
    reference)."""
    one_hot = F.one_hot(torch.from_numpy(label_map.astype(np.int64)), num_labels).permute(2, 0, 1).float()
    return F.interpolate(one_hot[None], size=tuple(feat_size), mode='area')[0]


@torch.no_grad()
def appearance_oracle(feats: Tensor, labels: Tensor, memory_frame: int, frames: Sequence[int], obj: int,
                      settings: PropagationSettings) -> Dict[str, float]:
    """Read ``frames`` of ``feats`` (T, C, h, w) from ``memory_frame`` alone, with its true cell labels
    ``labels`` (T, K, h, w), without the radius; the recall (%) of object ``obj`` (its cells: share >= 0.5) and
    the mean number of other cells read as ``obj`` per frame."""
    settings = settings.replace(radius_on_first=False, hard_labels=False)
    recalls, false_cells = [], []
    for t in frames:
        soft = reference_propagate_step(feats[t], feats[memory_frame], labels[memory_frame], [], [],
                                        settings=settings)
        read_as_object = soft.argmax(0) == obj
        own = labels[t, obj] >= 0.5
        recalls.append(float(read_as_object[own].float().mean()))
        false_cells.append(int((read_as_object & ~own).sum()))
    return dict(recall=100 * float(np.mean(recalls)), false_cells=float(np.mean(false_cells)))


@torch.no_grad()
def propagated_masks(feats: Tensor, label_maps: np.ndarray, settings: PropagationSettings) -> np.ndarray:
    """(T, H, W) masks propagated through features (T, C, h, w) from frame 0's true label map (the evaluation's
    core and codec)."""
    loop = VideoLabelLoop(TiledPropagator(settings), MaskCodec.for_benchmark(label_maps[0]))
    return np.stack([np.asarray(loop.step(feat, label_maps[0] if t == 0 else None)) for t, feat in enumerate(feats)])


def mask_ious(predicted: np.ndarray, label_maps: np.ndarray, obj: int) -> np.ndarray:
    """(T,) IoU of object ``obj`` in predicted and true (T, H, W) masks (arrays or lists of (H, W) arrays); NaN
    where both are empty."""
    predicted, truth = np.asarray(predicted) == obj, np.asarray(label_maps) == obj
    union = (predicted | truth).sum((1, 2))
    return np.where(union > 0, (predicted & truth).sum((1, 2)) / np.maximum(union, 1), np.nan)


def propagated_ious(feats: Tensor, label_maps: np.ndarray, obj: int, settings: PropagationSettings) -> np.ndarray:
    """(T,) IoU of object ``obj``'s propagated and true masks (NaN where both are empty), frame 0 annotated."""
    return mask_ious(propagated_masks(feats, label_maps, settings), label_maps, obj)


def returning_object_rows(video: str, feats: Tensor, label_maps: np.ndarray, hidden_frames: Sequence[int],
                          settings: PropagationSettings) -> List[dict]:
    """Rows of :data:`COLUMNS` for the objects of one video that are absent in ``hidden_frames`` and back
    later, from its features (T, C, h, w) and true label maps (T, H, W)."""
    if not hidden_frames:
        return []
    num_labels = int(label_maps.max()) + 1
    labels = torch.stack([cell_labels(m, num_labels, feats.shape[-2:]) for m in label_maps])  # (T, K, h, w)
    rows, predicted = [], None
    for obj in range(1, num_labels):
        if (label_maps[list(hidden_frames)] == obj).any():
            continue
        back = [t for t in range(hidden_frames[-1] + 1, len(label_maps)) if (labels[t, obj] >= 0.5).any()]
        if not back:
            continue
        view = int(np.argmax([(m == obj).sum() for m in label_maps[:hidden_frames[0]]]))
        predicted = propagated_masks(feats, label_maps, settings) if predicted is None else predicted
        ious = mask_ious(predicted, label_maps, obj)
        frame0 = appearance_oracle(feats, labels, 0, back, obj, settings)
        largest = appearance_oracle(feats, labels, view, back, obj, settings)
        rows.append(dict(video=video, object=obj, hidden=f'{hidden_frames[0]}-{hidden_frames[-1]}', back=len(back),
                         propagated_iou=100 * float(np.nanmean(ious[back])), frame0_recall=frame0['recall'],
                         frame0_false_cells=frame0['false_cells'], view_frame=view, view_recall=largest['recall'],
                         view_false_cells=largest['false_cells']))
    return rows


@torch.no_grad()
def video_features(model, frames: Sequence[np.ndarray]) -> Tensor:
    """(T, C, h, w) features (on the CPU) of RGB frames (H, W, 3) uint8, as the evaluation computes them:
    ``model`` (a ``PropagationModel``) scales each frame up to its ``min_input_side`` for the backbone."""
    device = next(model.backbone.parameters()).device
    input_size = network_input_size(frames[0].shape[:2], model.min_input_side)
    return torch.stack([model.backbone(prepare_image(frame, input_size)[None].to(device))[0].cpu()
                        for frame in frames])


@torch.no_grad()
def benchmark_returning(model, data_root: str) -> List[dict]:
    """Rows of :data:`COLUMNS` for every returning object of the turning benchmark in ``data_root``, with
    ``model`` (a ``PropagationModel``: its backbone, ``min_input_side`` and settings)."""
    meta = read_json(os.path.join(data_root, 'meta.json'), FileNotFoundError,
                     'not found; this benchmark reads the hidden frames that a turning benchmark '
                     '(tools/make_vos_benchmark.py --kind turning) records there')
    hidden = {video['name']: video['hidden_frames'] for video in meta.get('videos', []) if video.get('hidden_frames')}
    dataset = DAVISDataset(data_root=data_root)  # its checks name a missing or mismatched frame's file
    samples = [dataset.get_data_info(index) for index in range(len(dataset))]
    samples = [sample for sample in samples if sample['video'] in hidden]
    rows = []
    progress = ProgressBar(len(samples))
    for sample in samples:
        frames = np.stack([read_image(path) for path in sample['frame_paths']])
        label_maps = np.stack([read_label_png(path)[0] for path in sample['anno_paths']])
        rows += returning_object_rows(sample['video'], video_features(model, frames), label_maps,
                                      hidden[sample['video']], model.settings)
        progress.update()
    return rows
