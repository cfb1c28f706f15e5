"""Capture at acceptance (受理): cases, documents, checklist, cover sheets, batch scans."""
