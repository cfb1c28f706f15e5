"""Historical archives (存量档案) from a vendor delivery: profile, readers, scan, dry-run report, import job, and
the reports after it (issue 20)."""
