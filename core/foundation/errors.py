"""The one exception a user can cause: a bad setting, folder or file.

It is caught once at the boundary (CLI main, page) and shown as its one-line message;
any other exception is a bug and stays loud.
"""


class UserError(Exception):
    """A problem the user can fix; str(error) is a complete one-line message."""
