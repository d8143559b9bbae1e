"""ExportError, and the output-path check the exporter's CLIs run before any slow work."""

import os


class ExportError(Exception):
    """A user-fixable problem: the message says what is wrong, what was expected, how to fix."""


def check_writable(path):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ExportError(
            f"cannot write {path}: directory {directory} does not exist (create it first)"
        )
    if not os.access(directory, os.W_OK):
        raise ExportError(f"cannot write {path}: directory {directory} is not writable")
    if os.path.isdir(path):
        raise ExportError(f"cannot write {path}: it is a directory; give a file path")
