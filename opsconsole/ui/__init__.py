"""Console pages shared by every app: layout, home, runs, audit, account."""
