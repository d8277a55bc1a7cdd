"""sleepbench.data."""
