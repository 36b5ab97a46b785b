"""Pure records and rules: what a face, a pupil, a decision and a name are; no I/O."""
