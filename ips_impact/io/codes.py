"""Text held as codes: a pandas ``Categorical`` of strings, each distinct value once.

:func:`ips_impact.io.readers.read_table` hands the panel's text columns over so
(``keep_codes``); the validation rules read their distinct values, and the study decodes
them once, for the rows it keeps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["is_text_codes", "used_categories", "distinct_values", "decode_text"]


def used_categories(col: pd.Series) -> np.ndarray:
    """Boolean mask of the categories of a ``Categorical`` column that occur in its rows."""
    # one scatter of True over the codes; a missing row (code -1) marks the extra last slot
    seen = np.zeros(len(col.cat.categories) + 1, dtype=bool)
    seen[col.cat.codes.to_numpy()] = True
    return seen[:-1]


def is_text_codes(col: pd.Series) -> bool:
    """Tell whether a column is text held as codes: a ``Categorical`` whose categories are all strings."""
    return (isinstance(col.dtype, pd.CategoricalDtype)
            and pd.api.types.infer_dtype(col.cat.categories, skipna=False) == "string")


def distinct_values(col: pd.Series) -> pd.Series:
    """Return the distinct non-missing values of a column, in order of first appearance.

    For a ``Categorical`` the categories that occur are read from the codes (one pass
    over small integers, none over text), in the order of the categories.
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = col.cat.categories
        return pd.Series(cats[used_categories(col)], dtype=cats.dtype)
    uniq = pd.Series(pd.unique(col))
    return uniq[uniq.notna()].reset_index(drop=True)


def decode_text(col: pd.Series, missing: object = np.nan) -> pd.Series:
    """Text held as codes back to an object column of the same strings (each one object, shared)."""
    if not isinstance(col.dtype, pd.CategoricalDtype):
        return col
    words = np.append(col.cat.categories.to_numpy(dtype=object), np.array([missing], dtype=object))
    return pd.Series(words[col.cat.codes.to_numpy()], index=col.index, name=col.name)
