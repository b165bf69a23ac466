"""Lossless, deterministic JSON for results: ``result_to_dict`` / ``result_from_dict``.

:meth:`ResultBase.to_dict` is made for reading (NaN → null, frames → rows); it cannot be
read back exactly. This module writes every dataclass field of a result with the type
information needed to rebuild it — the dtypes of each frame column, index types,
tuples versus lists, non-finite floats, periods, nested results — so that a loaded
result has the same ``tidy()``, ``summary()`` and ``plot()`` as the fitted one, without
the microdata. Floats are written in their shortest round-trip form, so values come back
bit for bit.

Tagged values are one-key objects whose key starts with ``"__"`` (``{"__frame__": …}``,
``{"__float__": "nan"}``, ``{"__tuple__": […]}``…). Only classes of :mod:`ips_impact`
that derive from :class:`~ips_impact.results.base.ResultBase` are rebuilt.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import pandas as pd

from ips_impact.errors import PlanError
from ips_impact.results.base import ResultBase

__all__ = ["encode", "decode", "result_to_dict", "result_from_dict", "dumps"]

FORMAT = 1


def _enc_scalar_float(v: float) -> Any:
    if math.isnan(v):
        return {"__float__": "nan"}
    if math.isinf(v):
        return {"__float__": "inf" if v > 0 else "-inf"}
    return v


def _dtype_name(dtype: Any) -> str:
    return str(dtype)


def _enc_index(index: pd.Index) -> Any:
    if isinstance(index, pd.RangeIndex):
        return {
            "__range__": [int(index.start), int(index.stop), int(index.step)],
            "name": encode(index.name),
        }
    if isinstance(index, pd.MultiIndex):
        return {
            "__multiindex__": [_enc_index(index.get_level_values(i)) for i in range(index.nlevels)],
            "names": [encode(n) for n in index.names],
        }
    return {
        "__index__": _enc_column(pd.Series(index.to_numpy(), dtype=index.dtype)),
        "name": encode(index.name),
    }


def _enc_column(col: pd.Series) -> dict[str, Any]:
    dtype = col.dtype
    name = _dtype_name(dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        return {
            "dtype": "category",
            "categories": _enc_column(pd.Series(dtype.categories)),
            "ordered": bool(dtype.ordered),
            "codes": [int(c) for c in col.cat.codes],
        }
    if isinstance(dtype, pd.PeriodDtype):
        return {
            "dtype": name,
            "freq": col.array.freqstr,
            "values": [None if pd.isna(v) else str(v) for v in col],
        }
    if name.startswith("datetime64"):
        return {
            "dtype": name,
            "values": [None if pd.isna(v) else pd.Timestamp(v).isoformat() for v in col],
        }
    if isinstance(dtype, np.dtype) and dtype.kind in "biu":
        return {"dtype": name, "values": col.to_numpy().tolist()}
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        arr = col.to_numpy()
        values = arr.tolist()
        if not np.isfinite(arr).all():
            values = [v if math.isfinite(v) else _enc_scalar_float(v) for v in values]
        return {"dtype": name, "values": values}
    # object, string, nullable extension types: values one by one
    return {"dtype": name, "values": [encode(v) for v in col.astype(object).tolist()]}


_NUMERIC = frozenset(
    {
        "float64",
        "float32",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "bool",
    }
)


def _dec_values(d: Mapping[str, Any]) -> Any:
    """Decode a column's values: an array, or an extension array (category, period)."""
    dtype = d["dtype"]
    if dtype == "category":
        cats = _dec_values(d["categories"])
        return pd.Categorical.from_codes(
            d["codes"], categories=pd.Index(cats), ordered=d["ordered"]
        )
    if dtype.startswith("period"):
        return pd.PeriodIndex([None if v is None else v for v in d["values"]], freq=d["freq"]).array
    if dtype.startswith("datetime64"):
        return pd.to_datetime(pd.Series(d["values"], dtype=object)).astype(dtype).to_numpy()
    raw = d["values"]
    if dtype in _NUMERIC:
        vals = [float(v["__float__"]) if isinstance(v, dict) else v for v in raw]
        return np.array(vals, dtype=dtype)
    values = [decode(v) for v in raw]
    if dtype == "object":
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        return arr
    return pd.array(values, dtype=dtype)


def _dec_index(d: Mapping[str, Any]) -> pd.Index:
    if "__range__" in d:
        a, b, c = d["__range__"]
        return pd.RangeIndex(a, b, c, name=decode(d["name"]))
    if "__multiindex__" in d:
        levels = [_dec_index(x) for x in d["__multiindex__"]]
        return pd.MultiIndex.from_arrays(levels, names=[decode(n) for n in d["names"]])
    return pd.Index(_dec_values(d["__index__"]), name=decode(d["name"]))


def encode(value: Any) -> Any:
    """Return a JSON-able, typed representation of ``value`` (see the module docstring)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _enc_scalar_float(float(value))
    if isinstance(value, ResultBase):
        return {"__result__": result_to_dict(value)}
    if isinstance(value, pd.DataFrame):
        return {
            "__frame__": {
                "columns": [encode(c) for c in value.columns],
                "data": [_enc_column(col) for _, col in value.items()],
                "index": _enc_index(value.index),
            }
        }
    if isinstance(value, pd.Series):
        return {
            "__series__": {
                "data": _enc_column(value),
                "index": _enc_index(value.index),
                "name": encode(value.name),
            }
        }
    if isinstance(value, np.ndarray):
        flat = value.ravel()
        data = (
            _enc_column(pd.Series(flat))["values"]
            if flat.dtype.kind in "biuf"
            else [encode(v) for v in flat.tolist()]
        )
        return {"__array__": {"dtype": str(value.dtype), "shape": list(value.shape), "data": data}}
    if isinstance(value, pd.Period):
        return {"__period__": str(value), "freq": value.freqstr}
    if isinstance(value, pd.Timestamp):
        return {"__timestamp__": value.isoformat()}
    if value is pd.NaT:
        return {"__nat__": True}
    if value is pd.NA:
        return {"__na__": True}
    if isinstance(value, range):
        return {"__rangeobj__": [value.start, value.stop, value.step]}
    if isinstance(value, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: encode(v) for k, v in value.items()}
        return {"__map__": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return {
            "__frozenset__": sorted(
                (encode(v) for v in value), key=lambda x: json.dumps(x, sort_keys=True)
            )
        }
    raise PlanError(
        f"cannot save a value of type {type(value).__name__} in a result",
        fix="report this: every field of a result must be saveable",
    )


def decode(value: Any) -> Any:
    """Invert :func:`encode`."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) >= 1:
        key = next(iter(value))
        if key.startswith("__"):
            body = value[key]
            if key == "__float__":
                return float(body)
            if key == "__result__":
                return result_from_dict(body)
            if key == "__frame__":
                cols = [decode(c) for c in body["columns"]]
                index = _dec_index(body["index"])
                if not cols:
                    return pd.DataFrame(index=index)
                frame = pd.DataFrame(
                    {i: _dec_values(c) for i, c in enumerate(body["data"])}, index=index
                )
                frame.columns = pd.Index(cols, dtype=object)
                return frame
            if key == "__series__":
                index = _dec_index(body["index"])
                return pd.Series(_dec_values(body["data"]), index=index, name=decode(body["name"]))
            if key == "__array__":
                data = [decode(v) for v in body["data"]]
                return np.array(data, dtype=body["dtype"]).reshape(body["shape"])
            if key == "__period__":
                return pd.Period(body, freq=value["freq"])
            if key == "__timestamp__":
                return pd.Timestamp(body)
            if key == "__nat__":
                return pd.NaT
            if key == "__na__":
                return pd.NA
            if key == "__rangeobj__":
                return range(*body)
            if key == "__map__":
                return {decode(k): decode(v) for k, v in body}
            if key == "__tuple__":
                return tuple(decode(v) for v in body)
            if key == "__frozenset__":
                return frozenset(decode(v) for v in body)
            if key in ("__range__", "__index__", "__multiindex__"):
                return _dec_index(value)
    return {k: decode(v) for k, v in value.items()}


def result_to_dict(result: ResultBase) -> dict[str, Any]:
    """Every init field of ``result``, typed (see :func:`encode`), with its class."""
    cls = type(result)
    fields = {f.name: encode(getattr(result, f.name))
              for f in dataclasses.fields(cast(Any, result)) if f.init}
    return {"format": FORMAT, "class": f"{cls.__module__}:{cls.__qualname__}", "fields": fields}


def _result_class(path: str) -> type:
    module, _, qual = path.partition(":")
    if not (module == "ips_impact" or module.startswith("ips_impact.")):
        raise PlanError(
            f"saved result names the class {path!r}, outside ips_impact",
            fix="load only analyses saved by ips_impact",
        )
    try:
        obj: Any = importlib.import_module(module)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        raise PlanError(
            f"saved result names the class {path!r}, which this version of ips_impact lacks",
            fix="load the analysis with the version of ips_impact that saved it "
            "(see provenance['versions'])",
        ) from None
    if not (isinstance(obj, type) and issubclass(obj, ResultBase)):
        raise PlanError(
            f"saved result names {path!r}, which is not a result class",
            fix="load only analyses saved by ips_impact",
        )
    return obj


def result_from_dict(data: Mapping[str, Any]) -> ResultBase:
    """Rebuild a result from :func:`result_to_dict` output (through its constructor, so frozen)."""
    if not isinstance(data, Mapping) or "class" not in data or "fields" not in data:
        raise PlanError(
            "not a saved result (no 'class' and 'fields')",
            fix="pass the output of result_to_dict()",
        )
    if data.get("format") != FORMAT:
        raise PlanError(
            f"saved result has format {data.get('format')!r}; this version reads {FORMAT}",
            fix="load it with the version of ips_impact that saved it",
        )
    cls = _result_class(str(data["class"]))
    fields = {k: decode(v) for k, v in data["fields"].items()}
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise PlanError(
            f"saved {cls.__name__} has fields this version does not know: {', '.join(unknown)}",
            fix="load it with the version of ips_impact that saved it",
        )
    return cls(**fields)


def dumps(value: Any) -> str:
    """Canonical JSON text: compact, UTF-8, newline at the end.

    Keys keep their insertion order (which is deterministic: results are built the same
    way every time), so that mappings such as a result's spec come back in their order.
    """
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n"
