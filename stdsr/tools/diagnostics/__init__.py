"""Diagnostics of trained networks (why a run ended where it did: ``fsr_health``)."""
