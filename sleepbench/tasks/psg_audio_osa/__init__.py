"""psg_audio_osa: dual-stream CRNN localising apneas/hypopneas in overnight sleep audio (PSG-Audio)."""
