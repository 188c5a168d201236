"""`make bench`: complaintcore's figures against same-run baselines (see bench/run.py)."""
