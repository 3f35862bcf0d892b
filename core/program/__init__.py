"""Whole exported programs (a `.pt2` from torch.export.save) of architectures the registry does not
know: read without running code from the file, evaluated, quantized (static int8, PT2E), pruned
(unstructured), exported to ONNX and timed in every runtime. `python -m core program` is its CLI.

    program = read_program(Path("model.pt2"))         # core.program.exported: checked, one line per bad file
    report = run_program(program, dataset, ProgramRequest(quantize="static", prune_amount=0.5, onnx=Path("m.onnx")))

Names are imported from their submodules on first use (core.foundation.lazy_exports).
"""

from __future__ import annotations

from core.foundation.lazy_exports import lazy_exports

_EXPORTS = {
    "ProgramFile": "core.program.exported",
    "read_program": "core.program.exported",
    "read_program_bytes": "core.program.exported",
    "runnable_module": "core.program.exported",
    "PROGRAM_LIMITS": "core.program.techniques",
    "ProgramRequest": "core.program.techniques",
    "check_program_fits": "core.program.techniques",
    "measure_program_runtimes": "core.program.techniques",
    "onnx_files": "core.program.techniques",
    "prune_unstructured": "core.program.techniques",
    "run_program": "core.program.techniques",
    "static_int8": "core.program.techniques",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
__all__ = sorted(_EXPORTS)
