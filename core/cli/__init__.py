"""`python -m core COMMAND`: the headless twin of the dashboard. main.py builds the parser and runs
`train`; each other command is one module here (prune, quantize, distill, pipeline, sweep, compare,
diff, deploy, jobs, report) with a register(subparsers, common) function. options.py holds the
options every command shares (torch-free: the share link names the sidebar's settings after them).

Nothing else in core imports this package (tests/test_layers.py checks it)."""
