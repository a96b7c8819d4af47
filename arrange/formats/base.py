"""What the packed formats share: index dtypes chosen from the format's parameters."""

from __future__ import annotations

import numpy as np

__all__ = ["index_dtype"]


def index_dtype(count: int) -> np.dtype:
    """The smallest signed integer dtype holding every index 0..count-1.

    Storage only: the bit cost a format reports is ceil(log2 count) per index
    (:func:`hwmodel.packed.index_bits_for`), whatever the array's dtype.

    >>> [str(index_dtype(c)) for c in (8, 128, 129, 40000)]
    ['int8', 'int8', 'int16', 'int32']
    """
    for dtype in (np.int8, np.int16, np.int32):
        if count - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)
