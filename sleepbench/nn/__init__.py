"""sleepbench.nn."""
