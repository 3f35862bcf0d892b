"""What compression changed, example by example and layer by layer (issue 13).

pairs.py        two models' logits -> agreement, the 2x2 table, per-class change, flipped images
exemplars.py    images a baseline gets right and most of its compressed descendants get wrong
layers.py       every layer's output error (relative, SQNR) against the source
runs.py         the entry points: diff_runs (two recorded runs), layer_errors_against_source (a live preview)
gallery.py      test images as pictures and captions

Each run's test-set logits are cached by core.contract.predictions; the commands
`python -m core diff` and `exemplars` are core/cli/diff.py.
"""
