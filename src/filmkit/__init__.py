"""filmkit: FiLM (Feature-wise Linear Modulation) and everything around it for visual reasoning research.

The FiLM layer itself lives in :mod:`filmkit.film` and depends on nothing but torch; the paper's CLEVR model is in
:mod:`filmkit.vqa`; the CLEVR-style world (scenes, renderer) is in :mod:`filmkit.clevr`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("filmkit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
