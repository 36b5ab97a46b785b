"""Test helpers that are not tests: fake face models, the CLI with fakes, shared data lists."""
