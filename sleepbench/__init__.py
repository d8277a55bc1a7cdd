"""sleepbench."""
