"""Image-pair correspondence: SPair-71k / PF-PASCAL / PF-WILLOW datasets, PCK, matchers, the evaluation
model and metric that ``tools/test.py`` runs, and the ``sfc-match`` command. Configs import this
subpackage with ``custom_imports`` so that its registry entries exist."""
from .datasets import (PCK_REFERENCES, PairDataError, PFPascalDataset, PFWillowDataset, SPair71kDataset,
                       pair_collate)
from .matching import (HYPERPIXEL_STYLES, MATCHERS, RECEPTIVE_FIELDS, BoxPrior, FeatureExtractor, FeatureMap,
                       MatchResult, PairMatcher, orientation_score, receptive_field)
from .metric import PairPCKMetric
from .model import FLIP_MODES, METHODS, PROTOCOLS, PairMatchingModel
from .pck import pck_hits, summarize_pck

__all__ = [
    'BoxPrior', 'FLIP_MODES', 'HYPERPIXEL_STYLES', 'MATCHERS', 'METHODS', 'PCK_REFERENCES', 'PROTOCOLS',
    'RECEPTIVE_FIELDS', 'FeatureExtractor', 'FeatureMap', 'MatchResult', 'PFPascalDataset', 'PFWillowDataset',
    'PairDataError', 'PairMatcher', 'PairMatchingModel', 'PairPCKMetric', 'SPair71kDataset', 'orientation_score',
    'pair_collate', 'pck_hits', 'receptive_field', 'summarize_pck'
]
