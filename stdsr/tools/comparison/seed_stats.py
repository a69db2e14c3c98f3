"""Mean and spread over seeds: the one definition the tables, the paired differences and the budget axis share.

The spread is the sample standard deviation (n - 1), as a reader of '± std over 3 seeds' expects.
"""
import math


def mean_std(values):
    """(mean, sample std) of a list of numbers; (None, None) for an empty list, std 0 for a single value."""
    values = list(values)
    if not values:
        return None, None
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean)**2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std
