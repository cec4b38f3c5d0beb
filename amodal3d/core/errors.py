"""The one exception type for user mistakes: the CLI prints its message as one line and exits non-zero."""


class UserError(Exception):
    """A problem with the user's input (path, file, prompt, option), not a bug. The message says what and how to fix."""
