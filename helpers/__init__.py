"""Polyjuice course helpers: the code the five notebooks import.

One module per concern (see ARCHITECTURE.md); notebooks stay thin and call these.
"""

__version__ = "0.1.0"
