"""Method 003 (SPECS §4): multi-resolution interlaced net + HTS-AT Transformer, shared by the
``icbhi_lung`` and ``esc50`` tasks."""
