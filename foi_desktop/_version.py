"""FoI Studio's version: one definition, in the engine (foi_engine/version.py), so the editor,
`foi` and `foi serve` report the same number."""

from foi_engine.version import DISTRIBUTION, version

__all__ = ["DISTRIBUTION", "version"]
