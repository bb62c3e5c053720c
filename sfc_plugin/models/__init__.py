from .backbones import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .propagators import *  # noqa: F401,F403
from .selfsup import *  # noqa: F401,F403
from .weight_init import StrictPretrained  # noqa: F401
