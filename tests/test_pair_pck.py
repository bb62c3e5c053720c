"""PCK equals an independent loop computation: invisible keypoints, boxes of different sizes, declined matches."""
import math

import numpy as np
import pytest

from sfc_plugin.correspondence import PairPCKMetric, pck_hits, summarize_pck

ALPHAS = (0.05, 0.1, 0.15)


def _random_pairs(seed: int = 0, count: int = 12):
    rng = np.random.default_rng(seed)
    pairs = []
    for index in range(count):
        k = int(rng.integers(1, 9))
        trg = rng.uniform(0, 200, (k, 2))
        pred = trg + rng.normal(0, 15, (k, 2))
        valid = rng.random(k) > 0.25
        trg[~valid & (rng.random(k) > 0.5)] = np.nan  # invisible keypoints may be NaN in the files
        pred[rng.random(k) > 0.85] = np.nan  # a matcher that declined
        box = [0, 0, float(rng.uniform(20, 300)), float(rng.uniform(20, 300))]
        pairs.append(dict(pair_id=str(index), category='ab'[index % 2], pred_kps=pred, trg_kps=trg, valid=valid,
                          pck_sizes={'bbox': max(box[2], box[3]), 'image': 250.0},
                          difficulty={'occlusion': index % 3}))
    return pairs


def _loop_pck(pairs, alpha, reference, average, keep=lambda pair: True):
    """PCK in percent with plain loops over keypoints."""
    per_pair, correct, total = [], 0, 0
    for pair in pairs:
        if not keep(pair):
            continue
        threshold = alpha * pair['pck_sizes'][reference]
        hits = []
        for (px, py), (gx, gy), ok in zip(pair['pred_kps'], pair['trg_kps'], pair['valid']):
            if not ok:
                continue
            distance = math.hypot(px - gx, py - gy)
            hits.append(1 if (not math.isnan(distance) and distance <= threshold) else 0)
        if hits:
            per_pair.append(sum(hits) / len(hits))
            correct, total = correct + sum(hits), total + len(hits)
    return 100 * (sum(per_pair) / len(per_pair) if average == 'pair' else correct / total)


def test_pck_hits_matches_a_loop():
    for pair in _random_pairs():
        hits = pck_hits(pair['pred_kps'], pair['trg_kps'], pair['valid'], pair['pck_sizes']['bbox'], ALPHAS)
        assert hits.shape == (3, int(pair['valid'].sum()))
        for row, alpha in zip(hits, ALPHAS):
            expected = [(not math.isnan(math.dist(p, g))) and math.dist(p, g) <= alpha * pair['pck_sizes']['bbox']
                        for p, g, ok in zip(pair['pred_kps'], pair['trg_kps'], pair['valid']) if ok]
            assert row.tolist() == expected


def test_threshold_is_inclusive():
    hits = pck_hits(np.array([[10.0, 0.0]]), np.array([[0.0, 0.0]]), np.array([True]), 100.0, (0.1, 0.0999))
    assert hits[:, 0].tolist() == [True, False]


def test_metric_per_pair_per_keypoint_per_category_and_difficulty():
    pairs = _random_pairs(1, 20)
    metric = PairPCKMetric(alphas=ALPHAS, reference=('bbox', 'image'), average='kpt')
    metric.process(None, pairs)
    metrics = metric.compute_metrics(metric.results)
    for alpha in ALPHAS:
        for reference in ('bbox', 'image'):
            for average in ('pair', 'kpt'):
                assert metrics[f'PCK-{reference}@{alpha:g}-{average}'] == pytest.approx(
                    _loop_pck(pairs, alpha, reference, average))
        assert metrics[f'PCK@{alpha:g}'] == pytest.approx(_loop_pck(pairs, alpha, 'bbox', 'kpt'))
    records = [dict(category=p['category'], difficulty=p['difficulty'],
                    hits=pck_hits(p['pred_kps'], p['trg_kps'], p['valid'], p['pck_sizes']['bbox'], ALPHAS))
               for p in pairs]
    summary = summarize_pck(records, ALPHAS)
    for category in 'ab':
        assert 100 * summary[f'category/{category}']['pair'][1] == pytest.approx(
            _loop_pck(pairs, 0.1, 'bbox', 'pair', lambda p, c=category: p['category'] == c))
    for value in range(3):
        assert 100 * summary[f'occlusion/{value}']['kpt'][2] == pytest.approx(
            _loop_pck(pairs, 0.15, 'bbox', 'kpt', lambda p, v=value: p['difficulty']['occlusion'] == v))


def test_metric_errors():
    with pytest.raises(ValueError, match='reference'):
        PairPCKMetric(reference='diagonal')
    with pytest.raises(ValueError, match='average'):
        PairPCKMetric(average='image')
    metric = PairPCKMetric(reference='kps_bbox')
    with pytest.raises(ValueError, match="no 'kps_bbox' PCK reference"):
        metric.process(None, _random_pairs(count=1))
    with pytest.raises(ValueError, match='positive'):
        pck_hits(np.zeros((1, 2)), np.zeros((1, 2)), np.array([True]), 0.0, ALPHAS)
    degenerate = _random_pairs(count=1)[0]
    degenerate['pck_sizes']['bbox'] = 0.0
    with pytest.raises(ValueError, match=r'pair 0 \(bbox reference\): .*positive'):
        PairPCKMetric().process(None, [degenerate])
