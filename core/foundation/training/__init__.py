"""Training: loop.py is the one training and full-test-set evaluation loop; records.py holds the plain
records it writes (recipe, epochs, evaluation, model metrics; torch-free); quick_evaluation.py is the
subset evaluator for everything that redraws while a slider moves."""
