"""Tiny SPair-71k, PF-PASCAL and PF-WILLOW folders in their exact published formats, for the tests."""
import csv
import json
import os
from typing import Dict, List

import cv2
import numpy as np
import scipy.io

from sfc_plugin.generators.offline_data import skimage_photo


def write_photo(path: str, name: str = 'chelsea', size=(48, 64)) -> str:
    """A real photo resized to ``size`` (H, W), written as JPEG or PNG by extension."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = cv2.resize(skimage_photo(name), (size[1], size[0]), interpolation=cv2.INTER_AREA)
    cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def spair_record(src: str, trg: str, category: str, src_kps, trg_kps, src_box, trg_box,
                 flags=(0, 0, 0, 0)) -> dict:
    """A SPair-71k pair annotation with its published field names (extra fields as in the release)."""
    return dict(pair_id=1, src_imname=f'{src}.jpg', trg_imname=f'{trg}.jpg', src_imsize=[64, 48, 3],
                trg_imsize=[64, 48, 3], src_bndbox=list(src_box), trg_bndbox=list(trg_box), category=category,
                src_pose='Frontal', trg_pose='Left', src_kps=[list(p) for p in src_kps],
                trg_kps=[list(p) for p in trg_kps], kps_ids=[str(i) for i in range(len(src_kps))],
                viewpoint_variation=flags[0], scale_variation=flags[1], truncation=flags[2], occlusion=flags[3],
                mirror=0)


def make_spair(root: str, pairs: List[dict], split: str = 'test') -> List[str]:
    """SPair-71k layout: ``pairs`` are spair_record dicts; returns the layout lines."""
    lines = []
    for index, record in enumerate(pairs, 1):
        category = record['category']
        for key in ('src_imname', 'trg_imname'):
            path = os.path.join(root, 'JPEGImages', category, record[key])
            if not os.path.exists(path):
                write_photo(path)
        line = f'{index:06d}-{record["src_imname"][:-4]}-{record["trg_imname"][:-4]}:{category}'
        os.makedirs(os.path.join(root, 'PairAnnotation', split), exist_ok=True)
        with open(os.path.join(root, 'PairAnnotation', split, f'{line}.json'), 'w') as file:
            json.dump(record, file)
        lines.append(line)
    os.makedirs(os.path.join(root, 'Layout', 'large'), exist_ok=True)
    with open(os.path.join(root, 'Layout', 'large', f'{split}.txt'), 'w') as file:
        file.write('\n'.join(lines) + '\n')
    return lines


def make_pfpascal(root: str, pairs: List[tuple], annotations: Dict[str, tuple], split: str = 'test') -> None:
    """HPF's PF-PASCAL: ``pairs`` (source name, target name, class index 1-based[, flip (trn)]);
    ``annotations`` name -> (class name, kps (N, 2) 1-based with NaN rows, bbox (4,) 1-based)."""
    for name, (category, kps, bbox) in annotations.items():
        write_photo(os.path.join(root, 'JPEGImages', f'{name}.jpg'))
        os.makedirs(os.path.join(root, 'Annotations', category), exist_ok=True)
        scipy.io.savemat(os.path.join(root, 'Annotations', category, f'{name}.mat'),
                         {'kps': np.asarray(kps, np.float64), 'bbox': np.asarray(bbox, np.float64)[None]})
    with open(os.path.join(root, f'{split}_pairs.csv'), 'w', newline='') as file:
        writer = csv.writer(file)
        writer.writerow(['source_image', 'target_image', 'class'] + (['flip'] if split == 'trn' else []))
        for source, target, class_index, *flip in pairs:
            writer.writerow([f'PF-dataset-PASCAL/JPEGImages/{source}.jpg', f'PF-dataset-PASCAL/JPEGImages/{target}.jpg',
                             class_index] + ([flip[0] if flip else 0] if split == 'trn' else []))


def make_pfwillow(root: str, pairs: List[tuple]) -> None:
    """HPF's PF-WILLOW ``test_pairs.csv``: ``pairs`` (image A path, image B path, kps A (10, 2), kps B (10, 2)),
    paths like 'PF-dataset/car(G)/Cars_000a.png', keypoints 1-based."""
    header = (['imageA', 'imageB'] + [f'XA{i}' for i in range(1, 11)] + [f'YA{i}' for i in range(1, 11)]
              + [f'XB{i}' for i in range(1, 11)] + [f'YB{i}' for i in range(1, 11)])
    with open(os.path.join(root, 'test_pairs.csv'), 'w', newline='') as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for image_a, image_b, kps_a, kps_b in pairs:
            for image in (image_a, image_b):
                path = os.path.join(root, *image.split('/')[1:])
                if not os.path.exists(path):
                    write_photo(path)
            kps_a, kps_b = np.asarray(kps_a), np.asarray(kps_b)
            writer.writerow([image_a, image_b] + kps_a[:, 0].tolist() + kps_a[:, 1].tolist()
                            + kps_b[:, 0].tolist() + kps_b[:, 1].tolist())
