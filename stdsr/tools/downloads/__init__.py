"""Downloads of published checkpoints (the BasicSR model zoo), verified, resumable and atomic."""
