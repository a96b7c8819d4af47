"""The full checkers for packed results, re-exported from the formats they check.

Every packing is verified before it is returned or reported:
:func:`verify_packing` (column combining, :func:`arrange.formats.column_combine.verify`)
checks each nonempty column in exactly one group, group sizes <= alpha,
per-group conflicts <= floor(gamma * R), each cell keeping the max-|W| entry of
its group row, and an exact decode; :func:`verify_nm`
(:func:`arrange.formats.nm.verify`) checks N:M positions, kept entries and decode.
"""

from __future__ import annotations

from .errors import VerificationError
from .formats.column_combine import verify as verify_packing
from .formats.nm import verify as verify_nm

__all__ = ["VerificationError", "verify_packing", "verify_nm"]
