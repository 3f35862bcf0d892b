"""The baseline: config.py names it (torch-free), card.py reads a cached one from its meta.json
without torch (the first render), trained.py trains it once and loads it from the cache."""
