"""Compare runs: the side-by-side table of chosen runs against a reference, lineage, and the
chosen runs for the Compare page and the report. Charts (core.charts) and the HTML report
(core.report.html) read from here; nothing here imports them, so the dependency runs one way.

- runs: comparison_table, table_records, pick_reference, waterfall_steps
- lineage: lineage_nodes, chain
- selection: load_summaries, baseline_for, parse_run_ids, architecture_choices, with_architectures, parse_architectures

A run's summary is core.contract.run_summary's (RunSummary, summarize); its model zip is
core.contract.artifact's; rebuilding a run's model is core.contract.run_models'; the Pareto front is
core.foundation.measures.pareto's; the `runs`, `report` and `pipeline` commands are in core/cli/.
"""
