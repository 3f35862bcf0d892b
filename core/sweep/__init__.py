"""The what-if explorer: sweeps over compression settings, run as Ray tasks.

    grid = parse_grid(["prune.amount=0.5:0.9:0.1", "quantize.bits=8,4"])   # core.sweep.grid
    spec = SweepSpec(grid, search="budget", objective="size", budget_points=1.0)
    result = run_sweep(source, spec, context, RayEngine())                 # core.sweep.run

A trial is one point of the grid: one technique, or a pipeline of the techniques it names in the
lab's order (distill, prune, quantize). Trials run on a Ray cluster (a local one by default); only
the driver writes the history, one run per finished trial, so a sweep stopped or killed keeps every
trial that finished and starting it again runs only the missing ones.
"""
