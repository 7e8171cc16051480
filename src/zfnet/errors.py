"""The one exception type that reaches the user as a single clear line."""


class UserError(Exception):
    """Bad input or configuration: the message names the file or config key and what was expected.

    Stage entry points print `error: <message>` and exit non-zero without a traceback.
    """
