"""SHHS SpO2 OSA-severity task: MSC-Mamba-LSTM on one night of 1 Hz SpO2 (SPECS §3)."""
