"""What a training or test process runs on: distributed setup, device, determinism, RNG state, checkpoints, logging,
and the checks an entry point makes before it touches the disk."""
