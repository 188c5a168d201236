"""The `complaintcore` command line: `main` builds it from the command groups of this package."""
