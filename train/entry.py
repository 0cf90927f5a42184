"""The ``jaxgrid-train`` console script: ``train.cli.main``, then a quick process exit.

A finished run leaves nothing to do at exit but the interpreter's own teardown (freeing every
module, jax's compiled programs and its CPU client), which takes about 1 s on a 2-core machine:
a sixth of a warm quickstart. So once the command's work is done, and only then, the process ends
with ``os._exit`` after everything the interpreter would have run first:

1. ``main`` returns (or raises ``SystemExit``): every run file is already written atomically and
   closed, and the loggers' background threads are joined (``LoggerGroup.close``);
2. the interpreter joins non-daemon threads, then runs the ``atexit`` handlers, newest first
   (jax's, W&B's, logging's flush: all registered after this module's handler);
3. the last handler, this module's (registered first), flushes stdout and stderr and calls
   ``os._exit`` with the exit code.

Any other exception (a traceback, a Ctrl-C outside the run loop) takes the normal exit path.
"""

from __future__ import annotations

import atexit
import os
import sys


class _ExitCode:
    code: int | None = None


def _exit_now(state: _ExitCode) -> None:
    """The last ``atexit`` handler: ends the process with ``state.code`` without the teardown."""
    if state.code is None:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be written
            pass
    os._exit(state.code)


def _code_of(exit: SystemExit) -> int:
    """The process exit code Python gives ``SystemExit(exit.code)``."""
    if exit.code is None:
        return 0
    if isinstance(exit.code, int):
        return exit.code
    return 1  # a message: Python prints it to stderr and exits 1


def main(argv: list[str] | None = None) -> int:
    """``jaxgrid-train``: runs ``train.cli.main(argv)`` and returns its exit code; the process then
    ends without the interpreter's teardown (see the module docstring)."""
    state = _ExitCode()
    atexit.register(_exit_now, state)  # before train.cli imports anything: the last to run
    try:
        from train import cli

        state.code = cli.main(argv)
    except SystemExit as exit:
        state.code = _code_of(exit)
        raise
    except BaseException:
        atexit.unregister(_exit_now)
        raise
    return state.code


if __name__ == "__main__":
    sys.exit(main())
