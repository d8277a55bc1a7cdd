"""Methods whose network is shared by several tasks."""
