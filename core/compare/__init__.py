"""Compare runs: one comparable summary per recorded run, the side-by-side table, the Pareto front,
lineage, and the model zip. Charts (core.charts) and the HTML report (core.report.html) read from here;
nothing here imports them, so the dependency runs one way.

- runs: RunSummary (one comparable summary per recorded run), comparison_table, table_records
- legacy: the figures of runs recorded before the technique contract
- pareto: pareto_front
- lineage: lineage_nodes, chain
- selection: load_summaries, baseline_for, parse_run_ids
- artifact: ModelPackage, write_model_zip, read_model_zip, load_model_zip, evaluate_package
- sources: package_for_run, package_from_quantized, dataset_for_run, recipe_for_run
- cli: the `runs`, `report` and `pipeline` commands
"""
