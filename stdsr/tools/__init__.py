"""What the scripts do: each command is a module named as its script, with ``main(argv)`` (``scripts/<path>.py``
is a few-line shim over ``stdsr.tools.<path>``); the libraries they share live in subpackages named for their job
(``benchmarking``, ``comparison``, ``profiling``, ``figures``, ``downloads``)."""
