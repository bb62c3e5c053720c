"""The error shell of the console scripts (``sfc-propagate``, ``sfc-match``, ``sfc-export``): one line and exit
status 1 for an error a user can fix, one line and 130 for Ctrl-C, the command's own status otherwise."""
import sys
from typing import Callable, Tuple, Type

from .checkpoint import CheckpointMismatchError

# Errors a user can fix: a missing or unreadable file (OSError), a bad value or a file that does not fit
# (ValueError and the project's errors derived from it), a missing optional package, checkpoint keys that
# do not match. Each message names the file or the option.
USER_ERRORS: Tuple[Type[BaseException], ...] = (OSError, ValueError, ImportError, CheckpointMismatchError)


def run_command(prog: str, command: Callable[[], int], user_errors: Tuple[Type[BaseException], ...] = USER_ERRORS,
                interrupted: str = 'interrupted') -> int:
    """Run a console script's ``command`` and return its exit status.

    Args:
        prog: the script's name, first word of every line printed here.
        command: the work; returns the exit status.
        user_errors: exceptions printed as ``PROG: error: MESSAGE`` (status 1) instead of a traceback.
        interrupted: what Ctrl-C left behind, printed as ``PROG: INTERRUPTED`` (status 130).
    """
    try:
        return command()
    except KeyboardInterrupt:
        print(f'{prog}: {interrupted}', file=sys.stderr)
        return 130
    except user_errors as error:
        print(f'{prog}: error: {error}', file=sys.stderr)
        return 1
