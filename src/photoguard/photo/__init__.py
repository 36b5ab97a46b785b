"""The stages one photo passes through, in flow order: ingest, decode, detect, identify, redact, encode, publish."""
