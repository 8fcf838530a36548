"""The one exception type for problems a user can cause (bad input, missing files, offline downloads)."""


class GanforgeError(Exception):
    """A user-facing error: the CLI prints its message as one line and exits with code 2."""
