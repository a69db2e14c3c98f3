"""Super-resolution of real footage (no GT): frame sources and sinks, and chunked inference over them."""
