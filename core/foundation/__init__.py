"""The foundation every technique stands on: data, models and their registry, training and
evaluation, the workspace and the run history, and the measures of size and latency.

Nothing here imports a technique, an engine, a view or the CLI (tests/test_layers.py checks it).

    data/        dataset names (torch-free) and the datasets themselves, decoded once to uint8 tensors
    models/      the registry of architectures by name, the small-image ResNet, channel removal
    training/    the training loop, its plain records, the quick subset evaluator
    baseline/    the trained fp32 model every technique starts from: its config, its card, its cache
    measures/    parameters, MACs, bytes, the latency protocol, compiling for the CPU, the Pareto front
    workspace.py the folder everything is kept in (atomic files, safetensors checkpoints)
    history.py   the SQLite run history
    errors.py    UserError, the one exception a user can cause; progress.py: Progress and StopFlag
    lazy_exports.py  a package's names loaded on first use, so configs are read before torch
"""
