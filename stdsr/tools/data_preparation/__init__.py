"""The data-preparation commands, one module per script of ``scripts/data_preparation/``."""
