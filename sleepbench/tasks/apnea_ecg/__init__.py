"""Method 001: single-lead ECG apnea detection (Apnea-ECG) with an ESI ConvNeXt-V2 backbone."""
