"""The one exception type whose message is written for the person using refocus."""


class RefocusError(ValueError):
    """Bad input or an unavailable resource, explained in a sentence a user understands.

    It subclasses ``ValueError`` so callers that validate arguments can catch either. The UI
    shows the message as a ``gr.Error``; the CLI prints it and exits non-zero.
    """
