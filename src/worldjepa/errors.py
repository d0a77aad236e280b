"""User-facing errors.

A `UserError` means the input is wrong (a bad config key, an image size the patch size does not
divide, an empty dataset folder...). The CLI prints its message as one line, without a traceback:
the message must say what is wrong and how to fix it.
"""


class UserError(Exception):
    """Bad input from the user; the message names the problem and the fix."""


def one_line(text: object) -> str:
    """`text` on one line: the lines of a library's multi-line message (YAML, PIL) joined by "; "."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())
