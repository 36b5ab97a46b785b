"""The only SQL: schema, ledger of photos and outputs, consent registry, templates, audit, keys."""
