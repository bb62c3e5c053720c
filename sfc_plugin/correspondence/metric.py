"""PCK of image-pair keypoint transfer, overall, per category and per SPair-71k difficulty."""
from typing import List, Optional, Sequence, Union

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from sfc_plugin.utils.table import format_table
from sfc_plugin.registry import METRICS
from .datasets import PCK_REFERENCES, SPAIR_DIFFICULTY
from .pck import AVERAGES, pck_hits, summarize_pck


@METRICS.register_module()
class PairPCKMetric(BaseMetric):
    """PCK@alpha of predicted target keypoints (see :mod:`sfc_plugin.correspondence.pck`), in percent.

    Keys: ``PCK@<alpha>`` with the first reference and the chosen average, and for every reference
    R and average A ``PCK-<R>@<alpha>-<A>`` (A: ``pair`` = mean over pairs of each pair's PCK,
    ``kpt`` = over all keypoints). Per category and (SPair-71k) per difficulty flag value are logged
    as tables.

    ``process`` expects per pair: ``category``, ``pred_kps`` and ``trg_kps`` (K, 2), ``valid`` (K,),
    ``pck_sizes`` (reference name -> pixels) and ``difficulty``.

    Args:
        alphas: thresholds as fractions of the reference size.
        reference: reference size(s) of ``PCK_REFERENCES``; the first gives ``PCK@<alpha>``
            (SPair-71k 'bbox', PF-PASCAL 'image', PF-WILLOW 'kps_bbox').
        average: 'pair' or 'kpt', the average ``PCK@<alpha>`` reports.
    """

    def __init__(self, alphas: Sequence[float] = (0.05, 0.1, 0.15), reference: Union[str, Sequence[str]] = 'bbox',
                 average: str = 'pair', collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.alphas = tuple(float(alpha) for alpha in alphas)
        self.references = (reference,) if isinstance(reference, str) else tuple(reference)
        unknown = [name for name in self.references if name not in PCK_REFERENCES]
        if unknown or not self.references:
            raise ValueError(f'PairPCKMetric: reference must be among {PCK_REFERENCES}, got {self.references}')
        if average not in AVERAGES:
            raise ValueError(f'PairPCKMetric: average must be one of {AVERAGES}, got {average!r}')
        self.average = average

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            hits = {}
            for reference in self.references:
                size = sample['pck_sizes'].get(reference)
                if size is None:
                    raise ValueError(f'pair {sample.get("pair_id")}: this dataset has no {reference!r} PCK reference '
                                     f'(it has {", ".join(sample["pck_sizes"])})')
                try:
                    hits[reference] = pck_hits(sample['pred_kps'], sample['trg_kps'], sample['valid'], size,
                                               self.alphas)
                except ValueError as error:
                    raise ValueError(f'pair {sample.get("pair_id")} ({reference} reference): {error}') from error
            self.results.append(dict(category=sample['category'], difficulty=dict(sample.get('difficulty') or {}),
                                     hits=hits))

    def compute_metrics(self, results: List[dict]) -> dict:
        if not results:
            raise ValueError('PairPCKMetric: no pair was evaluated')
        metrics = {}
        for index, reference in enumerate(self.references):
            summary = summarize_pck([dict(result, hits=result['hits'][reference]) for result in results], self.alphas)
            if 'all' not in summary:
                raise ValueError('PairPCKMetric: no pair has a keypoint visible in both images')
            for alpha_index, alpha in enumerate(self.alphas):
                for average in AVERAGES:
                    metrics[f'PCK-{reference}@{alpha:g}-{average}'] = 100 * float(summary['all'][average][alpha_index])
            if index == 0:
                primary = {f'PCK@{alpha:g}': 100 * float(summary['all'][self.average][i])
                           for i, alpha in enumerate(self.alphas)}
                self._log_tables(reference, summary)
        return {**primary, **metrics}

    def _log_tables(self, reference: str, summary: dict) -> None:
        header = ['group', 'pairs', 'kpts'] + [f'PCK@{a:g} {avg}' for a in self.alphas for avg in AVERAGES]

        def row(name: str, group: dict) -> list:
            return [name, group['pairs'], group['kpts']] + [100 * float(group[avg][i]) for i in range(len(self.alphas))
                                                            for avg in AVERAGES]

        categories = sorted(key for key in summary if key.startswith('category/'))
        rows = [row(key.split('/', 1)[1], summary[key]) for key in categories] + [row('all', summary['all'])]
        text = format_table(f'PCK by category (reference: {reference}, %)', header, rows)
        flags = [f'{flag}/{value}' for flag, names in SPAIR_DIFFICULTY.items() for value in range(len(names))]
        present = [key for key in flags if key in summary]
        if present:
            named = []
            for key in present:
                flag, value = key.split('/')
                named.append(row(f'{flag}={SPAIR_DIFFICULTY[flag][int(value)]}', summary[key]))
            text += format_table(f'PCK by difficulty (reference: {reference}, %)', header, named)
        print_log('\n' + text, logger='current')
