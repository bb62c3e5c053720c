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
def propagated_ious(feats: Tensor, label_maps: np.ndarray, obj: int, settings: PropagationSettings) -> np.ndarray:
    """(T,) IoU of object ``obj``'s propagated and true masks (NaN where both are empty), frame 0 annotated."""
    loop = VideoLabelLoop(TiledPropagator(settings), MaskCodec.for_benchmark(label_maps[0]))
    ious = []
    for t, feat in enumerate(feats):
        predicted = np.asarray(loop.step(feat, label_maps[0] if t == 0 else None)) == obj
        truth = label_maps[t] == obj
        union = (predicted | truth).sum()
        ious.append((predicted & truth).sum() / union if union else np.nan)
    return np.array(ious)


def returning_object_rows(video: str, feats: Tensor, label_maps: np.ndarray, hidden_frames: Sequence[int],
                          settings: PropagationSettings) -> List[dict]:
    """Rows of :data:`COLUMNS` for the objects of one video that are absent in ``hidden_frames`` and back
    later, from its features (T, C, h, w) and true label maps (T, H, W)."""
    if not hidden_frames:
        return []
    num_labels = int(label_maps.max()) + 1
    labels = torch.stack([cell_labels(m, num_labels, feats.shape[-2:]) for m in label_maps])  # (T, K, h, w)
    rows = []
    for obj in range(1, num_labels):
        if (label_maps[list(hidden_frames)] == obj).any():
            continue
        back = [t for t in range(hidden_frames[-1] + 1, len(label_maps)) if (labels[t, obj] >= 0.5).any()]
        if not back:
            continue
        view = int(np.argmax([(m == obj).sum() for m in label_maps[:hidden_frames[0]]]))
        ious = propagated_ious(feats, label_maps, obj, settings)
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


def read_benchmark_video(data_root: str, video: str) -> tuple:
    """A video of a DAVIS-layout benchmark: (T, H, W, 3) uint8 RGB frames and (T, H, W) label maps."""
    frame_dir = os.path.join(data_root, 'JPEGImages', '480p', video)
    names = sorted(os.path.splitext(name)[0] for name in os.listdir(frame_dir) if name.endswith('.jpg'))
    frames = np.stack([read_image(os.path.join(frame_dir, f'{name}.jpg')) for name in names])
    label_maps = np.stack([read_label_png(os.path.join(data_root, 'Annotations', '480p', video, f'{name}.png'))[0]
                           for name in names])
    return frames, label_maps


@torch.no_grad()
def benchmark_returning(model, data_root: str) -> List[dict]:
    """Rows of :data:`COLUMNS` for every returning object of the turning benchmark in ``data_root``, with
    ``model`` (a ``PropagationModel``: its backbone, ``min_input_side`` and settings)."""
    meta = read_json(os.path.join(data_root, 'meta.json'), FileNotFoundError,
                     'not found; this benchmark reads the hidden frames that a turning benchmark '
                     '(tools/make_vos_benchmark.py --kind turning) records there')
    videos = [video for video in meta.get('videos', []) if video.get('hidden_frames')]
    rows = []
    progress = ProgressBar(len(videos))
    for video in videos:
        frames, label_maps = read_benchmark_video(data_root, video['name'])
        rows += returning_object_rows(video['name'], video_features(model, frames), label_maps,
                                      video['hidden_frames'], model.settings)
        progress.update()
    return rows
