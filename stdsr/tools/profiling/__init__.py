"""Profiling shared by the profile and memory commands: a network's cost per frame, a training step's phases."""
