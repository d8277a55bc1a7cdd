"""sleepbench.io."""
