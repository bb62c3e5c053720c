from .davis import DAVISMetric
from .jhmdb import JHMDBPCKMetric
from .vip import VIPMetric

__all__ = ['DAVISMetric', 'JHMDBPCKMetric', 'VIPMetric']
