"""The job queue for long work (issue 15): jobs run on Ray outside any page's script run, at most
N at once; identical jobs run once and every session that asked gets the result."""
