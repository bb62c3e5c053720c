"""Test-only training hooks (imported by configs written in the tests)."""
from mmengine.hooks import Hook

from sfc_plugin.registry import HOOKS


class SimulatedCrash(RuntimeError):
    pass


@HOOKS.register_module(force=True)
class CrashAfterIterHook(Hook):
    """Raise after iteration ``at`` (1-based) has finished and its checkpoint has been written."""

    priority = 'LOWEST'

    def __init__(self, at: int) -> None:
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.at:
            raise SimulatedCrash(f'simulated crash after iteration {self.at}')
