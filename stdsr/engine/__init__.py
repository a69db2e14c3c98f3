"""The training and test loops over an options dict, as ``python -m stdsr.train`` and ``stdsr.test`` run them."""
