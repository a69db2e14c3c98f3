"""Command-line error handling shared by the entry points and scripts: one line per user error, exit 2.

A user who mistyped an option or pointed at a broken frame needs the sentence that says so, not 30 lines of
stack above it. Errors of the project's own kinds (bad options, data, checkpoints, outputs) print as
``<prog>: error: <message>``; anything else is a bug and keeps its traceback. ``--debug`` on the command line
or ``STDSR_DEBUG=1`` in the environment shows the traceback of user errors too.
"""
import os
import sys
import traceback

DEBUG_ENV = 'STDSR_DEBUG'
USER_ERROR_EXIT = 2


class UserInputError(ValueError):
    """Bad input of a script (paths, outputs, arguments); the message names the file or argument at fault."""


class LauncherError(UserInputError):
    """``--launcher`` names a launcher this process was not started by."""


def user_error_types():
    """Exception classes whose message is the whole story for a user (imported late: they live all over)."""
    from stdsr.data.clip_io import DataError
    from stdsr.losses.kd_baselines_loss import FeatureTapError
    from stdsr.models.clip_vsr_model import NonFiniteLossError
    from stdsr.utils.checkpoint import CheckpointError
    from stdsr.utils.feature_hooks import UnknownModulePathError
    from stdsr.utils.options import OptionError
    from stdsr.utils.profiling import ProfileError
    from stdsr.utils.weights import WeightsError
    return (UserInputError, OptionError, DataError, WeightsError, CheckpointError, NonFiniteLossError,
            UnknownModulePathError, FeatureTapError, ProfileError)


def debug_requested(argv=None):
    """``--debug`` among the arguments, or ``STDSR_DEBUG`` set to something other than 0/empty."""
    argv = sys.argv[1:] if argv is None else argv
    return '--debug' in argv or os.environ.get(DEBUG_ENV, '') not in ('', '0')


def format_error(prog, error):
    """``prog: error: message`` on one line (newlines of multi-line messages folded into '; ')."""
    message = str(error).strip() or type(error).__name__
    if isinstance(error, KeyError) and message.startswith(("'", '"')):
        message = message[1:-1]  # KeyError quotes its message
    return f"{prog}: error: {'; '.join(line.strip() for line in message.splitlines() if line.strip())}"


def run_cli(prog, main, argv=None, extra_errors=()):
    """Call ``main(argv)``; print a user error as one line on stderr and return exit status 2.

    Returns ``main``'s result otherwise (or 0 for None), so ``sys.exit(run_cli(...))`` is the whole script tail.
    """
    try:
        result = main(argv)
    except user_error_types() + tuple(extra_errors) as error:
        if debug_requested(argv):
            traceback.print_exc()
        print(format_error(prog, error), file=sys.stderr, flush=True)
        return USER_ERROR_EXIT
    return 0 if result is None or not isinstance(result, int) else result
