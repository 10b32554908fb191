"""What the training commands share on the command line: errors as a message and an exit status."""

from __future__ import annotations

import sys
from typing import Callable

from refocus.errors import RefocusError


def exit_status(command: Callable[[], object]) -> int:
    """Run ``command``; 0, or 1 after printing its ``RefocusError`` as ``error: ...`` on stderr.

    Any other exception is a bug and keeps its traceback.
    """
    try:
        command()
    except RefocusError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
