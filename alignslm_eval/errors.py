"""The one exception type for bad user input."""


class UserError(Exception):
    """Bad input: a missing file, a malformed column, an unknown name.

    The CLI prints the message as a single line and exits with status 2, so every message must name the file or
    field at fault and say what to do about it.
    """
