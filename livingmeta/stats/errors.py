"""The one exception the statistics engine raises for bad input."""


class StatsInputError(Exception):
    """Input to the statistics engine is wrong in a way a person can fix.

    The message names where (file and line, or 1-based data row), which column,
    what is wrong and how to fix it.
    """
