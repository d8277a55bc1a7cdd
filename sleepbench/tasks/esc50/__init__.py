"""esc50: environmental sound classification on ESC-50 (50 classes, 5 official folds)."""
