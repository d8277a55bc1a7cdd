"""Signal processing shared by the tasks: filters, resampling, scaling, spectral features."""
