"""Image-pair correspondence: SPair-71k / PF-PASCAL / PF-WILLOW datasets, PCK, matchers, the evaluation
model and metric that ``tools/test.py`` runs, and the ``sfc-match`` command. Configs import this
subpackage with ``custom_imports`` so that its registry entries exist."""
from .datasets import (PCK_REFERENCES, PairDataError, PFPascalDataset, PFWillowDataset, SPair71kDataset,
                       pair_collate)
from .matching import MATCHERS, FeatureExtractor, FeatureMap, MatchResult, PairMatcher
from .metric import PairPCKMetric
from .model import PairMatchingModel
from .pck import pck_hits, summarize_pck

__all__ = [
    'MATCHERS', 'PCK_REFERENCES', 'FeatureExtractor', 'FeatureMap', 'MatchResult', 'PFPascalDataset',
    'PFWillowDataset', 'PairDataError', 'PairMatcher', 'PairMatchingModel', 'PairPCKMetric', 'SPair71kDataset',
    'pair_collate', 'pck_hits', 'summarize_pck'
]
