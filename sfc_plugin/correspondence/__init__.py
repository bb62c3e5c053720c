"""Image-pair correspondence: SPair-71k / PF-PASCAL / PF-WILLOW datasets, a stereo pair with ground-truth
disparity, PCK, matchers, the evaluation model and metric that ``tools/test.py`` runs, and the ``sfc-match``
command. Configs import this subpackage with ``custom_imports`` so that its registry entries exist."""
from .cats_model import CATsMatchingModel
from .datasets import (PCK_REFERENCES, PairDataError, PFPascalDataset, PFWillowDataset, SPair71kDataset,
                       pair_collate)
from .matching import (HYPERPIXEL_STYLES, MATCHERS, RECEPTIVE_FIELDS, BoxPrior, FeatureExtractor, FeatureMap,
                       MatchResult, PairMatcher, orientation_score, receptive_field)
from .metric import PairPCKMetric
from .model import FLIP_MODES, METHODS, PROTOCOLS, PairMatchingModel
from .pck import pck_hits, summarize_pck
from .stereo import stereo_keypoints, stereo_pck
from .training_data import PairTrainingDataset, pair_training_collate

__all__ = [
    'BoxPrior', 'CATsMatchingModel', 'FLIP_MODES', 'HYPERPIXEL_STYLES', 'MATCHERS', 'METHODS', 'PCK_REFERENCES', 'PROTOCOLS',
    'RECEPTIVE_FIELDS', 'FeatureExtractor', 'FeatureMap', 'MatchResult', 'PFPascalDataset', 'PFWillowDataset',
    'PairDataError', 'PairMatcher', 'PairMatchingModel', 'PairPCKMetric', 'PairTrainingDataset', 'SPair71kDataset', 'orientation_score',
    'pair_collate', 'pair_training_collate', 'pck_hits', 'receptive_field', 'stereo_keypoints', 'stereo_pck', 'summarize_pck'
]
