"""Model Efficiency Lab core: every computation the dashboard and the CLI share.

This package never imports streamlit, so each function runs from the CLI, a test or a notebook.
"""

from core.foundation.ray_environment import prepare_ray_environment

# Before any module of the lab imports Ray, which reads these once, at import: token
# authentication, and a local cluster whose ports listen on 127.0.0.1 (core/foundation/ray_environment.py).
prepare_ray_environment()

__version__ = "0.1.0"
