"""Layer 0: the error type, CLI error handling and the on-disk file names every other layer shares."""
