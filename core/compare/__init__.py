"""Compare and present. Import from the submodules (kept free of package-level imports, because
core.charts.compare and core.compare.report use each other's modules):

- runs: RunSummary (one comparable summary per recorded run), comparison_table, table_records
- pareto: pareto_front
- lineage: lineage_nodes, chain
- selection: load_summaries, baseline_for, parse_run_ids
- report: build_report (self-contained HTML), runs_csv
- artifact: ModelPackage, write_model_zip, read_model_zip, load_model_zip, evaluate_package
- sources: package_for_run, package_from_quantized
- png: png_export_status, figure_png
- pipeline: PipelineConfig, PRESETS, build_pipeline_config, run_pipeline -> PipelineResult
- cli: the `runs`, `report` and `pipeline` commands
"""
