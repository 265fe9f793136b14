"""The one error type the command line turns into a one-line message and exit 2."""


class ImagefixError(Exception):
    """Bad usage or bad input: the message is shown to the user as one line."""
