"""sleepbench.tasks."""
