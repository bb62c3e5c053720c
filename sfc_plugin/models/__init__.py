from .backbones import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .propagation_model import PropagationModel  # noqa: F401
from .selfsup import *  # noqa: F401,F403
from .weight_init import StrictPretrained  # noqa: F401
