"""The only SQL: ``db`` (schema, connection, transactions), ``ledger`` (photos, outputs, live
outputs, takedowns, quarantine), ``consent`` (registry), ``templates`` (encrypted face templates),
``audit`` (audit trail, deletion log), ``keys`` (key file, per-pupil keys), ``clock`` (UTC times)."""
