"""Command-line logic of the scripts in ``scripts/``: each module has a ``main(argv)`` that a script calls."""
