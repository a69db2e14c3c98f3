"""Command-line error handling shared by the entry points and scripts: one line per user error, exit 2.

A user who mistyped an option or pointed at a broken frame needs the sentence that says so, not 30 lines of stack
above it. Errors of the project's own kinds (``stdsr.errors.UserError``: bad options, data, checkpoints, outputs)
print as ``<prog>: error: <message>``; anything else is a bug and keeps its traceback. ``--debug`` on the command
line or ``STDSR_DEBUG=1`` in the environment shows the traceback of user errors too.
"""
import os
import sys
import traceback

from stdsr.errors import LauncherError, UserError, UserInputError  # noqa: F401  (re-exported for scripts)

DEBUG_ENV = 'STDSR_DEBUG'
USER_ERROR_EXIT = 2


def debug_requested(argv=None):
    """``--debug`` among the arguments, or ``STDSR_DEBUG`` set to something other than 0/empty."""
    argv = sys.argv[1:] if argv is None else argv
    return '--debug' in argv or os.environ.get(DEBUG_ENV, '') not in ('', '0')


def original_message(error):
    """The message ``error`` was raised with, also when a DataLoader worker raised it.

    torch re-raises a worker's exception in the main process as the same type, but with a message of
    ``Caught X in DataLoader worker process N. Original Traceback ...`` and the worker's whole traceback; the
    original message is what follows the traceback's last ``module.X: ``."""
    message = str(error)
    if not (message.startswith('Caught ') and '\nOriginal Traceback' in message):
        return message
    cls = type(error)
    name = cls.__qualname__ if cls.__module__ in ('builtins', '__main__') else f'{cls.__module__}.{cls.__qualname__}'
    at = message.rfind(f'\n{name}: ')
    return message[at + len(name) + 3:] if at >= 0 else message


def format_error(prog, error):
    """``prog: error: message`` on one line (newlines of multi-line messages folded into '; '; an error from a
    DataLoader worker as its own message, see :func:`original_message`)."""
    message = original_message(error).strip() or type(error).__name__
    if isinstance(error, KeyError) and message.startswith(("'", '"')):
        message = message[1:-1]  # KeyError quotes its message
    return f"{prog}: error: {'; '.join(line.strip() for line in message.splitlines() if line.strip())}"


def first_few(items, shown=3):
    """``a, b, c and 17 more``: a list in an error line a person reads, not one of 2,000 characters."""
    items = [str(item) for item in items]
    rest = len(items) - shown
    return ', '.join(items[:shown]) + (f' and {rest} more' if rest > 0 else '')


def run_cli(prog, main, argv=None, extra_errors=()):
    """Call ``main(argv)``; print a user error as one line on stderr and return exit status 2.

    Returns ``main``'s result otherwise (or 0 for None), so ``sys.exit(run_cli(...))`` is the whole script tail.
    """
    try:
        result = main(argv)
    except (UserError, ) + tuple(extra_errors) as error:
        if debug_requested(argv):
            traceback.print_exc()
        print(format_error(prog, error), file=sys.stderr, flush=True)
        return USER_ERROR_EXIT
    return 0 if result is None or not isinstance(result, int) else result
