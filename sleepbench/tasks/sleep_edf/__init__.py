"""Sleep staging on Sleep-EDF with TinyUStaging (single EEG + EOG, 30-s epochs)."""
