"""The catalogue: the source of truth for cases, documents, archive items, identities and the audit log."""
