"""The tiled propagation core against the dense reference and an explicit-loop oracle."""
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from sfc_plugin.propagation import (PropagationSettings, PropagationStep, ReferencePropagator, TiledPropagator,
                                    TileGeometry, default_tile_size, propagate_step, reference_propagate_step)

# integer radius: keys exactly on it exist; several tiles (the default for a map this small is one)
SMALL = dict(topk=5, context_len=4, radius=3.0, temperature=0.1, tile_size=(4, 8))
SELECT_DTYPES = [None, torch.float16, torch.bfloat16]


def unit(x: torch.Tensor, dim: int = -3) -> torch.Tensor:
    return F.normalize(x, dim=dim)


def random_video(frames, channels=12, height=10, width=13, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [unit(torch.randn(channels, height, width, generator=g)) for _ in range(frames)]


def smooth_video(frames, channels=12, height=10, width=13, seed=0):
    """Blurred random fields drifting over time: neighbouring cells and frames are alike."""
    g = torch.Generator().manual_seed(seed)
    field = torch.randn(channels, height + 8, width + 8 + frames, generator=g)
    kernel = torch.outer(*(2 * [torch.exp(-torch.arange(-3., 4.) ** 2 / 4)]))
    kernel = (kernel / kernel.sum()).expand(channels, 1, 7, 7)
    blurred = F.conv2d(field[None], kernel, padding=3, groups=channels)[0]
    noise = 0.05 * torch.randn(frames, channels, height, width, generator=g)
    return [unit(blurred[:, 4:4 + height, 4 + t:4 + t + width] + noise[t]) for t in range(frames)]


def region_maps(frames, height, width, num_regions=3):
    """Per frame, a region id map: vertical bands that move right by one cell per frame."""
    cols = torch.arange(width)
    return [((cols + t) * num_regions // width % num_regions).expand(height, width) for t in range(frames)]


def piecewise_video(frames, channels=12, height=10, width=13, noise=0.1, seed=0):
    """Piecewise-constant regions (moving bands) plus noise that breaks exact ties."""
    g = torch.Generator().manual_seed(seed)
    prototypes = unit(torch.randn(3, channels, generator=g), dim=1)
    return [unit(prototypes[ids].permute(2, 0, 1) + noise * torch.randn(channels, height, width, generator=g))
            for ids in region_maps(frames, height, width)]


def blob_video(frames, channels=12, height=10, width=13, seed=0):
    """Two Gaussian blobs (objects) moving over a textured background."""
    g = torch.Generator().manual_seed(seed)
    background = torch.randn(channels, height, width, generator=g)
    objects = torch.randn(2, channels, generator=g)
    ys, xs = torch.meshgrid(torch.arange(float(height)), torch.arange(float(width)), indexing='ij')
    video = []
    for t in range(frames):
        feat = background + 0.3 * torch.randn(channels, height, width, generator=g)
        for k, (y, x) in enumerate([(3 + 0.3 * t, 2 + 0.8 * t), (7 - 0.2 * t, 10 - 0.6 * t)]):
            weight = torch.exp(-((ys - y) ** 2 + (xs - x) ** 2) / 4)
            feat = feat + 4 * weight * objects[k, :, None, None]
        video.append(unit(feat))
    return video


def random_labels(num_classes, height, width, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(num_classes, height, width, generator=g), 0)


def run_video(video, annotations, core_options):
    """Step a core and the reference through a video; annotations: {frame: labels}."""
    settings = PropagationSettings(**core_options)  # the reference ignores how the core computes
    core, reference = TiledPropagator(settings), ReferencePropagator(settings)
    pairs = [(core.step(feat, annotations.get(t)), reference.step(feat, annotations.get(t)))
             for t, feat in enumerate(video)]
    return core, pairs


def assert_agree(pairs):
    """Argmax labels agree on >= 99.9 % of the predicted cells; soft labels to 1e-4."""
    predicted = pairs[1:]
    agree = torch.cat([(a.argmax(0) == b.argmax(0)).flatten() for a, b in predicted]).float().mean()
    worst = max(float((a - b).abs().max()) for a, b in predicted)
    assert agree >= 0.999 and worst <= 1e-4, f'argmax agreement {agree:.4f}, soft max diff {worst:.2e}'


MODES = {
    'padded': dict(),
    'unpadded': dict(pad_with_first=False),
    'radius_on_first': dict(radius_on_first=True),
    'hard_labels': dict(hard_labels=True),
    'dilution_gain': dict(dilution_gain=1.5),
}


@pytest.mark.parametrize('select_dtype', SELECT_DTYPES)
@pytest.mark.parametrize('mode', list(MODES))
def test_core_matches_reference_over_a_video(mode, select_dtype):
    video = random_video(9)
    _, pairs = run_video(video, {0: random_labels(3, 10, 13, seed=1)},
                         dict(SMALL, select_dtype=select_dtype, num_candidates=8, **MODES[mode]))
    assert_agree(pairs)


@pytest.mark.parametrize('select_dtype', SELECT_DTYPES)
@pytest.mark.parametrize('pad_with_first', [True, False])
def test_reannotated_keyframes(select_dtype, pad_with_first):
    """A keyframe while copies of frame 0 are still in the window (t=2), and one after (t=7)."""
    video = random_video(11, seed=3)
    annotations = {t: random_labels(3, 10, 13, seed=t) for t in (0, 2, 7)}
    core, pairs = run_video(video, annotations, dict(SMALL, select_dtype=select_dtype, num_candidates=8,
                                                     pad_with_first=pad_with_first))
    for t in annotations:
        assert pairs[t][0] is annotations[t]
    assert_agree(pairs)


@pytest.mark.parametrize('select_dtype', SELECT_DTYPES)
@pytest.mark.parametrize('make_video', [smooth_video, piecewise_video, blob_video])
def test_core_matches_reference_on_structured_videos(make_video, select_dtype):
    video = make_video(10, seed=5)
    _, pairs = run_video(video, {0: random_labels(3, 10, 13, seed=6)},
                         dict(SMALL, radius=4.0, select_dtype=select_dtype, num_candidates=8))
    assert_agree(pairs)


@pytest.mark.parametrize('tile_size', [(1, 1), (2, 3), (3, 5), (4, 4), (16, 16)])
def test_tile_sizes(tile_size):
    video = random_video(7, height=9, width=11, seed=7)
    for select_dtype in (None, torch.float16):
        _, pairs = run_video(video, {0: random_labels(4, 9, 11, seed=8)},
                             dict(SMALL, radius=2.5, select_dtype=select_dtype, tile_size=tile_size))
        assert_agree(pairs)


def test_near_ties_use_the_exact_fallbacks_and_stay_exact():
    """Regions of almost equal features defeat the low-precision selection; the retries and the exact
    recomputation must still give the reference's labels (constant per region, so ties don't matter)."""
    height, width = 8, 12
    video = piecewise_video(8, height=height, width=width, noise=1e-5, seed=9)
    first_ids = region_maps(1, height, width)[0]
    labels = F.one_hot(first_ids, 3).permute(2, 0, 1).float()
    core, pairs = run_video(video, {0: labels}, dict(SMALL, select_dtype=torch.float16, num_candidates=5))
    assert core.stats['reselected'] > 0 and core.stats['recomputed'] > 0, dict(core.stats)
    assert_agree(pairs)


def test_random_inputs_are_mostly_selected_on_the_first_try():
    core, pairs = run_video(random_video(8, channels=64, seed=10), {0: random_labels(3, 10, 13, seed=11)},
                            dict(SMALL, context_len=3, select_dtype=torch.float16, num_candidates=12))
    assert core.stats['selected'] >= 0.95 * core.stats['queries'] > 0
    assert_agree(pairs)


def loop_prediction(query, long_feat, long_labels, window, radius, topk, temperature, radius_on_first, y, x):
    """One cell's prediction by explicit loops over the context keys (double precision)."""
    entries = [(long_feat, long_labels, radius_on_first)] + [(f, lab, True) for f, lab in window]
    candidates = []
    for feat, labels, restricted in entries:
        for ky in range(feat.shape[1]):
            for kx in range(feat.shape[2]):
                if restricted and (ky - y) ** 2 + (kx - x) ** 2 >= radius ** 2:
                    continue
                score = torch.dot(query[:, y, x].double(), feat[:, ky, kx].double()).item()
                candidates.append((score, labels[:, ky, kx].double()))
    top = sorted(candidates, key=lambda c: -c[0])[:topk]
    weights = [math.exp((s - top[0][0]) / temperature) for s, _ in top]
    return sum(w * lab for w, (_, lab) in zip(weights, top)) / sum(weights)


@pytest.mark.parametrize('radius_on_first', [False, True])
@pytest.mark.parametrize('copies', [0, 2])
def test_step_matches_explicit_loops(radius_on_first, copies):
    g = torch.Generator().manual_seed(12)
    C, h, w, K = 6, 7, 8, 3
    query, long_feat, *short = [unit(torch.randn(C, h, w, generator=g)) for _ in range(4)]
    long_labels, *short_labels = [torch.softmax(2 * torch.randn(K, h, w, generator=g), 0) for _ in range(3)]
    options = dict(topk=6, radius=2.0, temperature=0.2, radius_on_first=radius_on_first)
    window = [(long_feat, long_labels)] * copies + list(zip(short, short_labels))
    expected = torch.stack([torch.stack([loop_prediction(query, long_feat, long_labels, window, y=y, x=x, **options)
                                         for x in range(w)], -1) for y in range(h)], -2).float()
    for select_dtype in (None, torch.float16):
        settings = PropagationSettings(select_dtype=select_dtype, tile_size=(2, 3), num_candidates=6, **options)
        got = propagate_step(query, long_feat, long_labels, torch.stack(short), torch.stack(short_labels), copies,
                             settings)
        assert torch.allclose(got, expected, atol=1e-5), float((got - expected).abs().max())
    dense = reference_propagate_step(query, long_feat, long_labels, [f for f, _ in window],
                                     [lab for _, lab in window], settings=PropagationSettings(**options))
    assert torch.allclose(dense, expected, atol=1e-5)


@pytest.mark.parametrize('select_dtype', [None, torch.float16])
def test_keys_exactly_on_the_radius_are_excluded(select_dtype):
    """The best match lies exactly `radius` cells away in a short-term frame: it must not be used."""
    C, h, w = 8, 9, 9
    basis = torch.eye(C)
    query = unit(torch.randn(C, h, w, generator=torch.Generator().manual_seed(13)))
    query[:, 4, 4] = basis[0]
    long_feat = basis[7][:, None, None].expand(C, h, w).clone()  # scores 0 for the centre query
    short = basis[6][:, None, None].expand(C, h, w).clone()
    short[:, 4, 7] = basis[0]  # distance exactly 3: score 1, excluded
    short[:, 1, 4] = basis[0]  # distance exactly 3 vertically
    short[:, 4, 6] = 0.9 * basis[0] + math.sqrt(1 - 0.81) * basis[1]  # distance 2: score 0.9
    labels = torch.zeros(3, h, w)
    labels[0] = 1
    short_labels = labels.clone()
    short_labels[:, 4, 7] = short_labels[:, 1, 4] = torch.tensor([0., 1., 0.])
    short_labels[:, 4, 6] = torch.tensor([0., 0., 1.])
    settings = PropagationSettings(topk=1, radius=3.0, select_dtype=select_dtype)
    got = propagate_step(query, long_feat, labels, short[None], short_labels[None], 0, settings)
    assert torch.equal(got[:, 4, 4], torch.tensor([0., 0., 1.]))
    inclusive = PropagationSettings(topk=1, radius=3.01, select_dtype=select_dtype)
    got = propagate_step(query, long_feat, labels, short[None], short_labels[None], 0, inclusive)
    assert torch.equal(got[:, 4, 4], torch.tensor([0., 1., 0.]))


def test_held_memory_does_not_grow_with_the_video():
    core = TiledPropagator(PropagationSettings(**SMALL, select_dtype=torch.float16))
    g = torch.Generator().manual_seed(14)
    core.step(unit(torch.randn(8, 6, 7, generator=g)), random_labels(2, 6, 7, seed=15))
    sizes = {}
    for t in range(1, 201):
        core.step(unit(torch.randn(8, 6, 7, generator=g)))
        if t in (50, 200):
            sizes[t] = core.memory_bytes()
    assert sizes[50] == sizes[200] > 0


def test_propagation_step_exports_to_onnx(tmp_path):
    ort = pytest.importorskip('onnxruntime')
    g = torch.Generator().manual_seed(16)
    C, h, w, K, m = 8, 9, 11, 3, 3
    query = unit(torch.randn(C, h, w, generator=g))
    context = unit(torch.randn(m + 1, C, h, w, generator=g))
    context_labels = torch.softmax(2 * torch.randn(m + 1, K, h, w, generator=g), 1)
    settings = PropagationSettings(topk=4, context_len=m, radius=3.0, temperature=0.1, tile_size=(2, 4))
    module = PropagationStep(h, w, settings)
    expected = module(query, context, context_labels)
    path = str(tmp_path / 'propagate.onnx')
    torch.onnx.export(module, (query, context, context_labels), path, dynamo=False, opset_version=17,
                      input_names=['query', 'context_feats', 'context_labels'], output_names=['labels'])
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    (got,) = session.run(None, {'query': query.numpy(), 'context_feats': context.numpy(),
                                'context_labels': context_labels.numpy()})
    assert torch.allclose(torch.from_numpy(got), expected, atol=1e-5)
    dense = reference_propagate_step(query, context[0], context_labels[0], list(context[1:]),
                                     list(context_labels[1:]), settings=settings)
    assert torch.allclose(expected, dense, atol=1e-5)


def test_geometry_covers_exactly_the_disk():
    """Every (query, key) pair the tiles mark as usable is in the image and within the radius, and none
    is missing."""
    geometry = TileGeometry(7, 9, radius=2.5, tile_size=(2, 3))
    found = set()
    for t in range(geometry.num_tiles):
        ty, tx = divmod(t, geometry.tiles_x)
        for p, s, q in geometry.pair_ok[t].nonzero().tolist():
            dy, dx = geometry.shifts[s]
            query = (ty * 2 + p // 3, tx * 3 + p % 3)
            key = ((ty + dy) * 2 + q // 3, (tx + dx) * 3 + q % 3)
            if query[0] < 7 and query[1] < 9:  # padding cells are queried too, their output is cropped
                found.add((query, key))
    expected = {((y, x), (ky, kx)) for y in range(7) for x in range(9) for ky in range(7) for kx in range(9)
                if (y - ky) ** 2 + (x - kx) ** 2 < 2.5 ** 2}
    assert found == expected


def test_bad_input_is_rejected():
    core = TiledPropagator(PropagationSettings(**SMALL))
    feat = unit(torch.randn(8, 6, 7))
    with pytest.raises(ValueError, match='first frame'):
        core.step(feat)
    core.step(feat, random_labels(2, 6, 7, seed=0))
    with pytest.raises(ValueError, match='differs'):
        core.step(unit(torch.randn(8, 6, 8)))
    with pytest.raises(ValueError, match='labels'):
        core.step(feat, random_labels(3, 6, 7, seed=0))
    with pytest.raises(ValueError, match='select_dtype'):
        PropagationSettings(select_dtype='int8')
    with pytest.raises(ValueError, match='num_candidates'):
        PropagationSettings(topk=10, num_candidates=5)
    with pytest.raises(ValueError, match='context_len must be >= 1'):
        PropagationSettings(context_len=0)
    with pytest.raises(ValueError, match=r"model.propagation: unknown propagation settings \['context'\]"):
        PropagationSettings.from_config(dict(topk=5, context=4), 'model.propagation')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('select_dtype', [None, torch.float16])
def test_cuda_matches_cpu(select_dtype):
    video = random_video(7, seed=17)
    labels = random_labels(3, 10, 13, seed=18)
    results = []
    for device in ('cpu', 'cuda'):
        core = TiledPropagator(PropagationSettings(**SMALL, select_dtype=select_dtype))
        results.append([core.step(f.to(device), labels.to(device) if t == 0 else None).cpu()
                        for t, f in enumerate(video)])
    assert_agree(list(zip(*results)))


@pytest.mark.parametrize('mode', list(MODES))
def test_batched_tiles_match_reference_and_row_path(mode):
    """The CUDA layout (all tiles at once, rows of zero tiles above and below) run on CPU tensors."""
    video = random_video(9, height=17, width=19, seed=21)  # 9 x 3 tiles of 2 x 8 cells
    annotations = {0: random_labels(3, 17, 19, seed=22), 6: random_labels(3, 17, 19, seed=23)}
    options = dict(SMALL, select_dtype=None, tile_size=(2, 8), **MODES[mode])
    core, pairs = run_video(video, annotations, dict(options, batch_tiles=True))
    geometry = core.store.geometry
    assert geometry.pad_rows and geometry.ring_pad == geometry.tiles_x + 1
    assert_agree(pairs)
    rows = TiledPropagator(PropagationSettings(**options, batch_tiles=False))
    for t, feat in enumerate(video):
        assert torch.allclose(rows.step(feat, annotations.get(t)), pairs[t][0], atol=1e-6)


def test_batched_step_and_its_checks():
    video = random_video(4, seed=24)
    labels = [random_labels(2, 10, 13, seed=25 + t) for t in range(3)]
    settings = PropagationSettings(topk=5, radius=3.0, select_dtype=None, batch_tiles=True)  # exact on AMX CPUs too
    batched = propagate_step(video[3], video[0], labels[0], torch.stack(video[1:3]), torch.stack(labels[1:]), 2,
                             settings)
    expected = propagate_step(video[3], video[0], labels[0], torch.stack(video[1:3]), torch.stack(labels[1:]), 2,
                              PropagationSettings(topk=5, radius=3.0, select_dtype=None))
    assert torch.allclose(batched, expected, atol=1e-6)
    with pytest.raises(ValueError, match='pad_rows=True'):
        propagate_step(video[3], video[0], labels[0], torch.stack(video[1:3]), torch.stack(labels[1:]), 2, settings,
                       TileGeometry(10, 13, 3.0))
    with pytest.raises(ValueError, match='exact fp32 path'):
        TiledPropagator(PropagationSettings(**SMALL, select_dtype=torch.float16, batch_tiles=True)).step(video[0],
                                                                                                        labels[0])


def test_default_tiles_and_one_tile_for_small_maps():
    assert default_tile_size(14) == (7, 14) and default_tile_size(14, 60, 107) == (7, 14)  # DAVIS features
    assert default_tile_size(14, 18, 22) == (18, 22)  # the demo clip's: smaller than a 35 x 42 key block
    assert default_tile_size(2) == (4, 8) and default_tile_size(2, 30, 40) == (4, 8)
    video = random_video(7, seed=26)
    _, pairs = run_video(video, {0: random_labels(3, 10, 13, seed=27)}, dict(SMALL, tile_size=None,
                                                                            select_dtype=None))
    assert_agree(pairs)


def test_benchmark_takes_real_features_from_a_file(tmp_path):
    from sfc_plugin.benchmarks.propagation import BenchmarkConfig, random_frame, scaled
    features = unit(torch.randn(3, 8, 5, 6))
    torch.save(features, tmp_path / 'features.pt')
    config = BenchmarkConfig(height=5, width=6, channels=8, features_file=str(tmp_path / 'features.pt'))
    assert torch.equal(random_frame(config, 2), features[2])
    with pytest.raises(ValueError, match='3 frames of features, frame 3 asked'):
        random_frame(config, 3)
    assert scaled(config, 0.5, 30).features_file is None  # real features exist at the full size only


def test_benchmark_product_bound_counts_the_pairs_a_query_may_use():
    from sfc_plugin.benchmarks.propagation import BenchmarkConfig, pairs_within_radius, product_bound
    height, width, radius = 6, 9, 2.5
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing='ij')
    cells = torch.stack([ys.flatten(), xs.flatten()], 1)
    offsets = cells[:, None] - cells[None]  # every (query, key) pair of the map
    by_pairs = int((offsets.pow(2).sum(-1) < radius ** 2).sum())
    assert pairs_within_radius(height, width, radius) == by_pairs < 21 * height * width  # 21 offsets in the disk
    settings = PropagationSettings(context_len=4, radius=radius)
    config = BenchmarkConfig(height=height, width=width, channels=10, settings=settings)
    bound = product_bound(config, gemm_gflops=2.0)
    flop = 2 * 10 * (4 * by_pairs + (height * width) ** 2)  # the short-term pairs and the whole long memory
    assert bound['gflop_per_frame'] == pytest.approx(flop / 1e9)
    assert bound['lower_bound_ms_per_frame'] == pytest.approx(flop / 2e9 * 1e3)
    assert bound['dense_to_exact_products'] == pytest.approx(2 * 10 * 5 * (height * width) ** 2 / flop)
    on_first = product_bound(replace(config, settings=settings.replace(radius_on_first=True)), 2.0)
    assert on_first['gflop_per_frame'] == pytest.approx(2 * 10 * 5 * by_pairs / 1e9)
