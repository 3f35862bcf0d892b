"""The technique contract: what every technique takes and gives, so an engine can run any of them.

    source = ModelSource.from_run(workspace, run_id)          # source.py
    result = prune(source, PruneConfig(amount=0.5), context)  # options.py (configs), context.py
    result.headline, result.details                           # result.py
    run_id = record(result, workspace)                        # record.py: artifact, then history row

A recorded run reads back through run_summary.py (legacy_runs.py for rows from before the
contract); its model comes back through run_models.py from artifact.py (model zips) or
pruned_artifact.py (pruned checkpoints); its test-set logits are cached by predictions.py.
"""
