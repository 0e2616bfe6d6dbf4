"""Errors the course reports to a person, with a message that says what to do."""


class CourseError(Exception):
    """A problem with the user's input (a name, a file, a device) rather than a bug.

    The command-line runner prints the message and exits with status 2.
    """
