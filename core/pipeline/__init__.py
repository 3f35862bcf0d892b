"""The combined pipeline: technique steps in order, each recorded, then the model zip.

config = build_pipeline_config(pipeline_options("smallest-fast", {}), source.architecture)
result = run_pipeline(source, config, context)
"""

from core.pipeline.config import PRESETS, STEP_ORDER, PipelineConfig, PipelinePreset, build_pipeline_config, check_steps, parse_steps, pipeline_options
from core.pipeline.run import PipelineStopped, StepResult, run_pipeline

__all__ = ["PRESETS", "STEP_ORDER", "PipelineConfig", "PipelinePreset", "PipelineStopped", "StepResult", "build_pipeline_config", "check_steps", "parse_steps", "pipeline_options", "run_pipeline"]
