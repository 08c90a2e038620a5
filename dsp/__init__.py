"""Signal processing on numpy arrays: G.711, DTMF, tones, levels. No I/O here."""
