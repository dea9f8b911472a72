"""The flag evaluation engine: pure Python, no Django, no I/O.

It evaluates features in Unleash's client-API format (``GET /api/client/features``: features
with strategies, constraints, segments and variants) with Unleash's semantics, so that a user
lands in the same bucket here as in any Unleash SDK:

- ``hashing``: the normalised MurmurHash3 of ``groupId:stickinessValue`` (1..100 for gradual
  rollout, seed 0; 1..total weight for variants, seed 86028157);
- ``constraints``: the constraint operators (IN / NOT_IN, string, numeric, date, semver;
  inverted, case-insensitive) and their validation;
- ``evaluate``: strategies, segments, variants and the result (enabled, variant, reason);
- ``stale``: which flags have outlived what their type expects;
- ``experiment``: A/B statistics (rates, lift, sample-ratio check, the sequential verdict on
  the canary judge's ``strategies.analysis.sequential``, the time still needed).

The reference is Unleash's own engine (Yggdrasil, which the ``UnleashClient`` package runs);
``tests/flags`` checks agreement on thousands of generated contexts.
May import: the standard library, ``mmh3``, ``semver`` and the pure ``strategies``.
Never Django, ``releases``, ``integrations``.
"""

from flags.engine.evaluate import (
    DISABLED_VARIANT,
    Compiled,
    Result,
    compile_features,
    evaluate,
)
from flags.engine.hashing import VARIANT_SEED, normalized_hash

__all__ = [
    "DISABLED_VARIANT",
    "VARIANT_SEED",
    "Compiled",
    "Result",
    "compile_features",
    "evaluate",
    "normalized_hash",
]
