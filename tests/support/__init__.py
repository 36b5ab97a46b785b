"""Test helpers that are not tests: the school builder and consent CSV, ../shared, fake face
models, synthetic photos, thread guards, the CLI with fakes, DNS fixtures and lists (README.md)."""
