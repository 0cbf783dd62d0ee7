"""The measurements, as pure computation: nothing here prints, reads argv or exits.

The accuracy audit (``accuracy``) and its exhaustive fp32 stream (``exhaustive``) and shard
merge (``merge``), mergeable statistics (``stats``, ``profile``), limits (``thresholds``),
code-path coverage (``paths``), speed (``speed``) and report comparison (``compare``).
May import: references, implementations, numerics and the foundation.
"""
