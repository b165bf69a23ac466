"""Pre-registered analysis plans: the TOML schema, its validation and stable estimand ids.

A plan lists the estimands of a trial's registered analysis. Each estimand is one call
of a public estimator of :mod:`ips_impact`,

    estimand = outcome × horizon / window × population × estimator (with its options),

tagged ``primary``, ``secondary`` or ``exploratory``, and optionally a member of a
*family* of hypotheses whose p-values are adjusted together by one multiple-testing
method. The plan also fixes the randomization draws (``n_permutations``) and the
``seed`` from which every random draw of the analysis is derived.

The schema (version 1) is documented in ``docs/plan.md``; the plan shipped with the
package (:meth:`AnalysisPlan.default`, ``ips_impact/plans/default.toml``) is a complete
example. Every problem is refused with :class:`~ips_impact.errors.PlanError` naming the
file, the line and the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from ips_impact.errors import PlanError

__all__ = [
    "AnalysisPlan",
    "EstimandSpec",
    "FamilySpec",
    "ESTIMATORS",
    "TAGS",
    "SCHEMA_VERSION",
]

SCHEMA_VERSION = 1

#: Tags of an estimand, from the most to the least confirmatory.
TAGS: tuple[str, ...] = ("primary", "secondary", "exploratory")

#: Estimators a plan can call (public functions of ``ips_impact``), and the name of the
#: argument that the plan's ``outcome`` key fills.
ESTIMATORS: dict[str, str] = {
    "itt": "outcome",
    "itt_by_period": "outcome",
    "late": "outcome",
    "spillover": "outcome",
    "heterogeneity": "outcome",
    "time_to_event": "event",
    "spell_survival": "state",
}

#: Estimators whose results have no randomization test (yet): they cannot join a family
#: adjusted on randomization p-values or by re-drawing the assignment.
NO_RANDOMIZATION: frozenset[str] = frozenset({"spell_survival"})

#: Options a plan never passes (not expressible in TOML, or fixed by the plan itself).
_NOT_PLAN_OPTIONS = frozenset({"sites"})

_P_METHODS = ("bonferroni", "holm", "bh", "by", "sharpened-q")
_RESAMPLING_METHODS = ("westfall-young", "romano-wolf")
METHODS: tuple[str, ...] = _P_METHODS + _RESAMPLING_METHODS

_FREQUENCIES = ("Q", "M", "Y", "W", "int")
_TOP_KEYS = (
    "schema",
    "frequency",
    "name",
    "description",
    "seed",
    "n_permutations",
    "min_per_arm",
    "defaults",
    "families",
    "estimands",
)
_FAMILY_KEYS = ("method", "pvalue", "description")
# Keys of an [[estimands]] block that belong to the plan, not to the estimator.
_PLAN_KEYS = (
    "id",
    "label",
    "estimator",
    "outcome",
    "outcomes",
    "horizons",
    "windows",
    "subgroups",
    "tag",
    "family",
    "description",
)
_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+\-]*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def _estimator_function(name: str) -> Any:
    import ips_impact as ii

    return getattr(ii, name)


def estimator_options(name: str) -> tuple[str, ...]:
    """Keyword options of the public estimator ``name`` that a plan may set.

    Read from the function's signature, so that the plan follows the estimators.
    """
    sig = inspect.signature(_estimator_function(name))
    return tuple(
        p.name
        for p in sig.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _NOT_PLAN_OPTIONS
    )


# ------------------------------------------------------------------ locating lines


_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY_RE = re.compile(r"^\s*(\"[^\"]+\"|'[^']+'|[A-Za-z0-9_\-]+)\s*=")


class _Locator:
    """Line numbers of tables and keys in a TOML text (tomllib gives none).

    A context is ``()`` for the root, ``("defaults",)``, ``("families", name)`` or
    ``("estimands", i)`` for the i-th ``[[estimands]]`` block.
    """

    def __init__(self, text: str | None) -> None:
        self.headers: dict[tuple[Any, ...], int] = {}
        self.keys: dict[tuple[tuple[Any, ...], str], int] = {}
        if not text:
            return
        context: tuple[Any, ...] = ()
        counts: dict[str, int] = {}
        depth = 0  # brackets open over several lines (multi-line arrays)
        for lineno, line in enumerate(text.splitlines(), start=1):
            stripped = line.split("#", 1)[0] if '"' not in line and "'" not in line else line
            if depth == 0:
                m = _HEADER_RE.match(line)
                if m and not _KEY_RE.match(line):
                    name = m.group(2).strip()
                    parts = tuple(p.strip().strip('"').strip("'") for p in name.split("."))
                    if m.group(1) == "[[":
                        i = counts.get(name, 0)
                        counts[name] = i + 1
                        context = (*parts, i)
                    else:
                        context = parts
                    self.headers.setdefault(context, lineno)
                    continue
                k = _KEY_RE.match(line)
                if k:
                    key = k.group(1).strip('"').strip("'")
                    self.keys.setdefault((context, key), lineno)
            depth += stripped.count("[") - stripped.count("]")
            depth = max(depth, 0)

    def line(self, context: tuple[Any, ...], key: str | None = None) -> int | None:
        if key is not None and (context, key) in self.keys:
            return self.keys[(context, key)]
        if context in self.headers:
            return self.headers[context]
        if context and (context[:1], context[1]) in self.keys:  # inline table: families = {…}
            return self.keys[(context[:1], str(context[1]))]
        return None


class _Context:
    """Raises PlanErrors that name the file, line and key of the problem."""

    def __init__(self, source: str, text: str | None) -> None:
        self.source = source
        self.locator = _Locator(text)

    def error(self, where: tuple[Any, ...], key: str | None, problem: str, fix: str) -> PlanError:
        line = self.locator.line(where, key)
        dotted = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in where)
        dotted = dotted.replace(".[", "[")
        full_key = f"{dotted}.{key}" if dotted and key else (key or dotted or "<plan>")
        place = f"{self.source}, line {line}" if line is not None else self.source
        err = PlanError(f"{place}, key '{full_key}': {problem}", fix=fix)
        err.path, err.line, err.key = self.source, line, full_key  # type: ignore[attr-defined]
        return err


# ------------------------------------------------------------------- value checks


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_int(ctx: _Context, where: tuple, key: str, v: Any, *, minimum: int | None = None) -> int:
    if not _is_int(v) or (minimum is not None and v < minimum):
        bound = f" ≥ {minimum}" if minimum is not None else ""
        raise ctx.error(
            where,
            key,
            f"must be an integer{bound}; got {v!r}",
            f"write e.g. {key} = {max(minimum or 0, 1)}",
        )
    return int(v)


def _check_str(ctx: _Context, where: tuple, key: str, v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ctx.error(where, key, f"must be a non-empty string; got {v!r}", f'write {key} = "…"')
    return v


def _check_window(ctx: _Context, where: tuple, key: str, v: Any) -> tuple[int, int]:
    if (
        not isinstance(v, (list, tuple))
        or len(v) != 2
        or not all(_is_int(x) for x in v)
        or v[0] > v[1]
    ):
        raise ctx.error(
            where,
            key,
            f"a window is two event times [a, b] with a ≤ b; got {v!r}",
            f"write {key} = [1, 20] (quarters 1 to 20 after randomization)",
        )
    return (int(v[0]), int(v[1]))


def _check_periods(ctx: _Context, where: tuple, v: Any) -> Any:
    if isinstance(v, Mapping):
        extra = sorted(set(v) - {"first", "last"})
        if extra or "first" not in v or "last" not in v:
            raise ctx.error(
                where,
                "periods",
                f"an inline table needs exactly 'first' and 'last'; got {dict(v)!r}",
                "write periods = { first = -8, last = 20 }",
            )
        a, b = v["first"], v["last"]
        if not (_is_int(a) and _is_int(b)) or a > b:
            raise ctx.error(
                where,
                "periods",
                f"first and last must be integers with first ≤ last; got {dict(v)!r}",
                "write periods = { first = -8, last = 20 }",
            )
        return {"first": int(a), "last": int(b)}
    if isinstance(v, (list, tuple)) and v and all(_is_int(x) for x in v):
        if len(set(v)) != len(v):
            raise ctx.error(
                where, "periods", f"event times repeat in {list(v)!r}", "list each event time once"
            )
        return [int(x) for x in v]
    raise ctx.error(
        where,
        "periods",
        f"must be a list of event times or {{ first, last }}; got {v!r}",
        "write periods = { first = -8, last = 20 }",
    )


def _check_str_list(ctx: _Context, where: tuple, key: str, v: Any) -> list[str]:
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) and x for x in v):
        raise ctx.error(
            where, key, f"must be a list of names; got {v!r}", f'write {key} = ["age", "female"]'
        )
    if len(set(v)) != len(v):
        raise ctx.error(where, key, f"names repeat in {list(v)!r}", "list each name once")
    return list(v)


def _plain(value: Any) -> Any:
    """Plain, comparable values (lists for tuples, dicts for mappings), for TOML/JSON."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        from ips_impact.results.base import FrozenMapping

        return FrozenMapping({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


# ------------------------------------------------------------------------- specs


@dataclasses.dataclass(frozen=True)
class FamilySpec:
    """A family of hypotheses adjusted together.

    Parameters
    ----------
    name
        The family's name (``[families.NAME]``).
    method
        Multiple-testing method of :func:`ips_impact.adjust_pvalues`: ``"bonferroni"``,
        ``"holm"``, ``"bh"``, ``"by"``, ``"sharpened-q"`` (on p-values) or
        ``"westfall-young"``, ``"romano-wolf"`` (on joint randomization draws).
    pvalue
        Which p-values the p-value methods adjust: ``"ri_p_value"`` (randomization,
        the default) or ``"p_value"`` (model-based).
    description
        Free text.
    """

    name: str
    method: str
    pvalue: str = "ri_p_value"
    description: str = ""

    @property
    def resampling(self) -> bool:
        """Whether the method re-draws the assignment (Westfall–Young, Romano–Wolf)."""
        return self.method in _RESAMPLING_METHODS

    def to_plain(self) -> dict[str, Any]:
        """Return the family as the table of a plan file."""
        out: dict[str, Any] = {"method": self.method}
        if not self.resampling:
            out["pvalue"] = self.pvalue
        if self.description:
            out["description"] = self.description
        return out


@dataclasses.dataclass(frozen=True)
class EstimandSpec:
    """One registered estimand: one call of an estimator.

    Parameters
    ----------
    id
        Stable identifier, e.g. ``"itt.work_on_di.k6"`` (derived from the content unless
        the plan gives ``id``): the same estimand keeps its id whatever else the plan holds.
    estimator
        Name of the public estimator (``"itt"``, ``"itt_by_period"``, ``"late"``,
        ``"spillover"``, ``"heterogeneity"``, ``"time_to_event"``, ``"spell_survival"``).
    outcome
        The outcome (for survival estimators: the event or state column).
    tag
        ``"primary"``, ``"secondary"`` or ``"exploratory"``.
    family
        Name of its multiple-testing family, or ``None``.
    options
        Keyword options passed to the estimator (plan form: windows as lists,
        ``periods`` as ``{first, last}`` or a list).
    description
        Free text.
    line
        Line of the ``[[estimands]]`` block in the plan file (not part of the plan's identity).
    """

    id: str
    estimator: str
    outcome: str
    tag: str
    family: str | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    description: str = ""
    line: int | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _frozen(dict(self.options)))

    def kwargs(self) -> dict[str, Any]:
        """Return the options as the estimator takes them (tuples, a range for periods)."""
        out: dict[str, Any] = {}
        for k, v in self.options.items():
            v = _plain(v)
            if k == "window" or k == "covariates" or k == "member_covariates":
                v = tuple(v)
            elif k == "periods":
                v = range(v["first"], v["last"] + 1) if isinstance(v, dict) else tuple(v)
            elif k == "members" and isinstance(v, list):
                v = tuple(v)
            out[k] = v
        return out

    def to_plain(self) -> dict[str, Any]:
        """Return the estimand as an ``[[estimands]]`` block (explicit id and options)."""
        out: dict[str, Any] = {
            "id": self.id,
            "estimator": self.estimator,
            "outcome": self.outcome,
            "tag": self.tag,
        }
        if self.family is not None:
            out["family"] = self.family
        if self.description:
            out["description"] = self.description
        out.update(_plain(dict(self.options)))
        return out


def derive_id(estimator: str, outcome: str, options: Mapping[str, Any], label: str | None) -> str:
    """Return the stable id of an estimand, e.g. ``itt.work_on_di.k6``.

    The form is ``estimator.[population.]outcome[.by_X][.k6|.k1_20[.sum]]``.

    Event times are written ``k6`` (horizon), ``k1_20`` (window or periods, both ends
    included), survival estimands ``tau20`` / ``h20`` (restriction time / horizon).
    A ``label`` is appended for populations the id cannot name (``subset``).
    """
    parts = [estimator]
    if estimator == "spillover":
        members = options.get("members", "partner")
        parts.append(members if isinstance(members, str) else "+".join(members))
        if options.get("level", "member") == "household":
            parts.append("household")
    parts.append(outcome)
    if estimator == "heterogeneity":
        parts.append("by_" + str(options.get("by", "region")))
    if "horizon" in options and estimator not in ("time_to_event", "spell_survival"):
        parts.append(f"k{options['horizon']}")
    if "window" in options:
        a, b = options["window"]
        parts.append(f"k{a}_{b}")
        if options.get("aggregate", "mean") != "mean":
            parts.append(str(options["aggregate"]))
    if estimator == "itt_by_period":
        p = options["periods"]
        a, b = (p["first"], p["last"]) if isinstance(p, Mapping) else (min(p), max(p))
        parts.append(f"k{a}_{b}")
    if estimator in ("time_to_event", "spell_survival"):
        if "horizon" in options:
            parts.append(f"h{options['horizon']}")
        if options.get("tau") is not None:
            tau = options["tau"]
            parts.append(f"tau{int(tau) if float(tau).is_integer() else tau}")
    if label:
        parts.append(label)
    return ".".join(str(p) for p in parts)


# -------------------------------------------------------------------------- plan


@dataclasses.dataclass(frozen=True)
class AnalysisPlan:
    """A pre-registered analysis plan: estimands, families, randomization draws and seed.

    Build it with :meth:`from_toml`, :meth:`from_string`, :meth:`from_dict` or
    :meth:`default`; write it with :meth:`to_toml`. Frozen; equality compares the
    content (not the file it came from).

    Parameters
    ----------
    name, description
        Free text.
    seed
        Seed of the analysis. The randomization draws of estimand ``e`` use the seed
        :math:`s_e = \\mathrm{SHA256}(\\text{"seed:e"})` (first 8 bytes, 63 bits), those of
        family ``f`` the seed of ``"seed:family:f"``: adding, removing or reordering
        estimands changes no other result.
    n_permutations
        Randomization draws per estimand (0: no randomization inference).
    min_per_arm
        An estimand with fewer persons than this in either arm is not reported; it
        carries the reason instead.
    frequency
        The panel frequency the event times are written in (``"Q"``: k = 6 is 18
        months); a study of another frequency is refused by :func:`run_plan`. ``None``:
        any.
    defaults
        Estimator options applied to every estimand whose estimator takes them (already
        applied to ``estimands``; kept for estimands added with :meth:`with_estimands`).
    families
        The multiple-testing families.
    estimands
        The estimands, in plan order, with unique ids.
    source
        Where the plan came from (file name, ``"<default>"`` or ``"<string>"``).
    """

    name: str
    seed: int
    n_permutations: int
    estimands: tuple[EstimandSpec, ...]
    families: tuple[FamilySpec, ...] = ()
    min_per_arm: int = 10
    description: str = ""
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    frequency: str | None = None
    source: str = dataclasses.field(default="<memory>", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "defaults", _frozen(dict(self.defaults)))

    # ---- construction
    @classmethod
    def from_toml(cls, path: str | Path) -> AnalysisPlan:
        """Read and validate a plan file (TOML, schema version 1).

        Raises
        ------
        PlanError
            Malformed TOML, unknown keys, impossible combinations, an exploratory
            estimand in a primary family…: the message names the file, line and key.
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise PlanError(
                f"cannot read the plan file {str(p)!r} ({exc.strerror})",
                fix="pass the path of a TOML plan, e.g. from `ips-impact plan --default`",
            ) from None
        return cls.from_string(text, source=p.name)

    @classmethod
    def from_string(cls, text: str, *, source: str = "<string>") -> AnalysisPlan:
        """Read and validate a plan from TOML text (see :meth:`from_toml`)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"line (\d+)", str(exc))
            err = PlanError(
                f"{source}{', line ' + m.group(1) if m else ''}: not valid TOML ({exc})",
                fix="check the quoting and brackets on that line",
            )
            err.path, err.line, err.key = source, int(m.group(1)) if m else None, None  # type: ignore[attr-defined]
            raise err from None
        return cls._build(data, _Context(source, text))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> AnalysisPlan:
        """Validate a plan given as a dictionary with the TOML structure."""
        return cls._build(data, _Context(source, None))

    @classmethod
    def default(cls) -> AnalysisPlan:
        """Return the trial's registered analysis, shipped as ``ips_impact/plans/default.toml``."""
        return cls.from_string(default_plan_text(), source="default.toml")

    @classmethod
    def _build(cls, data: Mapping[str, Any], ctx: _Context) -> AnalysisPlan:
        unknown = [k for k in data if k not in _TOP_KEYS]
        if unknown:
            raise ctx.error(
                (),
                unknown[0],
                "unknown key",
                f"the plan's top-level keys are {', '.join(_TOP_KEYS)}",
            )
        schema = data.get("schema", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION:
            raise ctx.error(
                (),
                "schema",
                f"schema version {schema!r} is not supported",
                f"write schema = {SCHEMA_VERSION}",
            )
        name = _check_str(ctx, (), "name", data.get("name", "analysis plan"))
        description = data.get("description", "")
        if not isinstance(description, str):
            raise ctx.error((), "description", "must be a string", 'write description = "…"')
        if "seed" not in data:
            raise ctx.error(
                (),
                None,
                "the plan has no 'seed'",
                "write seed = 2018 at the top: every randomization draw derives from it",
            )
        seed = _check_int(ctx, (), "seed", data["seed"], minimum=0)
        n_perm = _check_int(
            ctx, (), "n_permutations", data.get("n_permutations", 10_000), minimum=0
        )
        min_per_arm = _check_int(ctx, (), "min_per_arm", data.get("min_per_arm", 10), minimum=1)

        frequency = data.get("frequency")
        if frequency is not None and frequency not in _FREQUENCIES:
            raise ctx.error(
                (),
                "frequency",
                f"unknown panel frequency {frequency!r}",
                f"use one of {', '.join(_FREQUENCIES)} (Q: quarters)",
            )
        families = _parse_families(ctx, data.get("families", {}))
        defaults = _parse_defaults(ctx, data.get("defaults", {}))
        blocks = data.get("estimands")
        if (
            not isinstance(blocks, list)
            or not blocks
            or not all(isinstance(b, Mapping) for b in blocks)
        ):
            raise ctx.error(
                (),
                "estimands",
                "the plan lists no estimand",
                "add [[estimands]] blocks (see `ips-impact plan --default`)",
            )
        estimands: list[EstimandSpec] = []
        seen: dict[str, tuple] = {}
        for i, block in enumerate(blocks):
            for spec in _parse_estimand(ctx, ("estimands", i), block, defaults):
                if spec.id in seen:
                    raise ctx.error(
                        ("estimands", i),
                        "id" if "id" in block else None,
                        f"estimand id '{spec.id}' is used twice (also in the block at line "
                        f"{ctx.locator.line(seen[spec.id])})",
                        "give one of them another horizon, outcome or an explicit label",
                    )
                seen[spec.id] = ("estimands", i)
                estimands.append(spec)
        _check_families(ctx, families, estimands, seen, n_perm)
        return cls(
            frequency=frequency,
            defaults=defaults,
            name=name,
            description=description,
            seed=seed,
            n_permutations=n_perm,
            min_per_arm=min_per_arm,
            families=tuple(families.values()),
            estimands=tuple(estimands),
            source=ctx.source,
        )

    # ---- access
    def estimand(self, id: str) -> EstimandSpec:
        """Return the estimand with this id (PlanError listing the ids when absent)."""
        for e in self.estimands:
            if e.id == id:
                return e
        raise PlanError(
            f"the plan has no estimand '{id}'",
            fix=f"use one of {', '.join(e.id for e in self.estimands[:8])}…",
        )

    def family(self, name: str) -> FamilySpec:
        """Return the family with this name."""
        for f in self.families:
            if f.name == name:
                return f
        raise PlanError(
            f"the plan has no family '{name}'",
            fix=f"use one of {', '.join(f.name for f in self.families)}",
        )

    @property
    def ids(self) -> tuple[str, ...]:
        """Estimand ids in plan order."""
        return tuple(e.id for e in self.estimands)

    def family_tag(self, name: str) -> str:
        """``"primary"`` if the family holds a primary estimand, else its most confirmatory tag."""
        tags = [e.tag for e in self.estimands if e.family == name]
        return min(tags, key=TAGS.index) if tags else "exploratory"

    # ---- output
    def to_plain(self) -> dict[str, Any]:
        """Return the plan in canonical form: every estimand explicit (defaults applied, id set).

        The ``defaults`` table is kept too (for estimands added later); it changes none
        of the explicit estimands.
        """
        out: dict[str, Any] = {"schema": SCHEMA_VERSION, "name": self.name}
        if self.description:
            out["description"] = self.description
        if self.frequency is not None:
            out["frequency"] = self.frequency
        out.update(
            {
                "seed": self.seed,
                "n_permutations": self.n_permutations,
                "min_per_arm": self.min_per_arm,
            }
        )
        if self.defaults:
            # kept so that estimands added later (with_estimands) get them too; applying
            # them again to the explicit estimands below changes nothing
            out["defaults"] = _plain(dict(self.defaults))
        if self.families:
            out["families"] = {f.name: f.to_plain() for f in self.families}
        out["estimands"] = [e.to_plain() for e in self.estimands]
        return out

    def to_toml(self) -> str:
        """Write the plan in canonical TOML (:meth:`from_string` reads back an equal plan)."""
        import tomli_w

        return tomli_w.dumps(self.to_plain())

    def sha256(self) -> str:
        """SHA-256 of the canonical form: comments and layout of the file do not count."""
        blob = json.dumps(
            self.to_plain(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def with_estimands(self, extra: Iterable[Mapping[str, Any]]) -> AnalysisPlan:
        """Return a new plan with more estimands (dicts with ``[[estimands]]`` keys)."""
        data = self.to_plain()
        data["estimands"] = data["estimands"] + [dict(b) for b in extra]
        return AnalysisPlan.from_dict(data, source=self.source)

    def summary(self) -> str:
        """One line per estimand: id, tag, family."""
        lines = [
            f"{self.name}: {len(self.estimands)} estimands, {len(self.families)} families, "
            f"seed {self.seed}, {self.n_permutations:,} randomization draws"
        ]
        for f in self.families:
            n = sum(e.family == f.name for e in self.estimands)
            lines.append(
                f"  family {f.name} ({self.family_tag(f.name)}): {f.method} on {f.pvalue}, "
                f"{n} estimands"
            )
        for e in self.estimands:
            lines.append(f"  {e.tag:<11} {e.id}" + (f"  [{e.family}]" if e.family else ""))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<AnalysisPlan {self.name!r}: {len(self.estimands)} estimands, "
            f"{len(self.families)} families, seed {self.seed}>"
        )


def default_plan_text() -> str:
    """Return the text of the plan shipped with the package (comments included)."""
    return resources.files("ips_impact").joinpath("plans/default.toml").read_text(encoding="utf-8")


# ---------------------------------------------------------------- parsing helpers


def _parse_families(ctx: _Context, raw: Any) -> dict[str, FamilySpec]:
    if not isinstance(raw, Mapping):
        raise ctx.error(
            (),
            "families",
            "must be a table of families",
            'write [families.primary] method = "holm"',
        )
    out: dict[str, FamilySpec] = {}
    for name, body in raw.items():
        where = ("families", name)
        if not _NAME_RE.match(name):
            raise ctx.error(
                where,
                None,
                f"family name {name!r} has characters other than letters, digits, _ . -",
                "rename the family",
            )
        if not isinstance(body, Mapping):
            raise ctx.error(
                where, None, "a family is a table", f'write [families.{name}] method = "holm"'
            )
        unknown = [k for k in body if k not in _FAMILY_KEYS]
        if unknown:
            raise ctx.error(
                where, unknown[0], "unknown key", f"a family's keys are {', '.join(_FAMILY_KEYS)}"
            )
        method = body.get("method")
        if method not in METHODS:
            raise ctx.error(
                where,
                "method",
                f"unknown multiple-testing method {method!r}",
                f"use one of {', '.join(METHODS)}",
            )
        pvalue = body.get("pvalue", "ri_p_value")
        if pvalue not in ("ri_p_value", "p_value"):
            raise ctx.error(
                where,
                "pvalue",
                f"must be 'ri_p_value' or 'p_value'; got {pvalue!r}",
                'write pvalue = "ri_p_value" (randomization) or "p_value" (model-based)',
            )
        if method in _RESAMPLING_METHODS and "pvalue" in body:
            raise ctx.error(
                where,
                "pvalue",
                f"{method} re-draws the assignment; it adjusts no given p-value",
                "remove the pvalue key of this family",
            )
        out[name] = FamilySpec(
            name=name, method=method, pvalue=pvalue, description=str(body.get("description", ""))
        )
    return out


def _all_options() -> dict[str, tuple[str, ...]]:
    return {name: estimator_options(name) for name in ESTIMATORS}


def _parse_defaults(ctx: _Context, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ctx.error(
            (),
            "defaults",
            "must be a table of estimator options",
            "write [defaults] covariates = [...]",
        )
    known = {o for opts in _all_options().values() for o in opts}
    for key in raw:
        if key not in known:
            raise ctx.error(
                ("defaults",),
                key,
                "is an option of no estimator",
                f"defaults hold estimator options such as {', '.join(sorted(known)[:10])}…",
            )
    return dict(raw)


def _expand(
    ctx: _Context, where: tuple, block: Mapping[str, Any], singular: str, plural: str
) -> list[Any]:
    if singular in block and plural in block:
        raise ctx.error(
            where,
            plural,
            f"give either '{singular}' or '{plural}', not both",
            f"use '{plural}' for a list, '{singular}' for one value",
        )
    if plural in block:
        vals = block[plural]
        if not isinstance(vals, list) or not vals:
            raise ctx.error(
                where, plural, f"must be a non-empty list; got {vals!r}", f"write {plural} = [...]"
            )
        return list(vals)
    return [block[singular]] if singular in block else [None]


def _parse_estimand(
    ctx: _Context, where: tuple, block: Mapping[str, Any], defaults: Mapping[str, Any]
) -> list[EstimandSpec]:
    line = ctx.locator.line(where)
    estimator = block.get("estimator")
    if estimator not in ESTIMATORS:
        raise ctx.error(
            where,
            "estimator",
            f"unknown estimator {estimator!r}",
            f"use one of {', '.join(ESTIMATORS)}",
        )
    allowed = estimator_options(estimator)
    for key in block:
        if key not in _PLAN_KEYS and key not in allowed:
            other = [e for e, opts in _all_options().items() if key in opts]
            hint = f" (it is an option of {', '.join(other)})" if other else ""
            raise ctx.error(
                where,
                key,
                f"is not an option of {estimator}{hint}",
                f"the options of {estimator} are {', '.join(allowed)}",
            )
    tag = block.get("tag")
    if tag not in TAGS:
        raise ctx.error(
            where,
            "tag",
            f"every estimand is tagged {', '.join(TAGS)}; got {tag!r}",
            'write tag = "primary", "secondary" or "exploratory"',
        )
    family = block.get("family")
    if family is not None:
        _check_str(ctx, where, "family", family)
    label = block.get("label")
    if label is not None and (not isinstance(label, str) or not _NAME_RE.match(label)):
        raise ctx.error(
            where,
            "label",
            f"a label is letters, digits, _ . -; got {label!r}",
            'write label = "vl"',
        )
    description = block.get("description", "")

    outcomes = _expand(ctx, where, block, "outcome", "outcomes")
    if outcomes == [None]:
        what = ESTIMATORS[estimator]
        raise ctx.error(
            where,
            None,
            f"the estimand names no outcome ({what} of {estimator})",
            'write outcome = "work_on_di" (or outcomes = [...])',
        )
    for o in outcomes:
        if not isinstance(o, str) or not o:
            raise ctx.error(
                where,
                "outcomes" if "outcomes" in block else "outcome",
                f"an outcome is a column name; got {o!r}",
                'write outcome = "employed"',
            )
    horizons = _expand(ctx, where, block, "horizon", "horizons")
    windows = _expand(ctx, where, block, "window", "windows")
    bys = _expand(ctx, where, block, "by", "subgroups")
    if bys != [None] and estimator != "heterogeneity":
        raise ctx.error(
            where,
            "subgroups",
            f"subgroups belong to heterogeneity, not {estimator}",
            'use estimator = "heterogeneity"',
        )
    if (
        horizons != [None]
        and windows != [None]
        and estimator not in ("time_to_event", "spell_survival")
    ):
        key = "windows" if "windows" in block else "window"
        raise ctx.error(
            where,
            key,
            "an estimand has either a horizon or a window, not both",
            "split it into two [[estimands]] blocks",
        )
    explicit_id = block.get("id")
    n_expanded = len(outcomes) * len(horizons) * len(windows) * len(bys)
    if explicit_id is not None:
        if not isinstance(explicit_id, str) or not _ID_RE.match(explicit_id):
            raise ctx.error(
                where,
                "id",
                f"an id is letters, digits and _ . + -; got {explicit_id!r}",
                'write id = "itt.work_on_di.k6"',
            )
        if n_expanded > 1:
            raise ctx.error(
                where,
                "id",
                f"one id for {n_expanded} estimands (lists of outcomes/horizons)",
                "remove 'id' (ids are derived) or give one value per list",
            )

    base: dict[str, Any] = {k: v for k, v in defaults.items() if k in allowed}
    base.update({k: v for k, v in block.items() if k in allowed})
    for k in ("horizon", "window", "by"):
        base.pop(k, None)
    _check_options(ctx, where, estimator, base, block)

    out = []
    for outcome in outcomes:
        for h in horizons:
            for w in windows:
                for by in bys:
                    opts = dict(base)
                    if h is not None:
                        opts["horizon"] = _check_int(
                            ctx, where, "horizons" if "horizons" in block else "horizon", h
                        )
                    if w is not None:
                        opts["window"] = list(
                            _check_window(
                                ctx, where, "windows" if "windows" in block else "window", w
                            )
                        )
                    if by is not None:
                        opts["by"] = _check_str(
                            ctx, where, "subgroups" if "subgroups" in block else "by", by
                        )
                    _check_combination(ctx, where, estimator, opts, block)
                    eid = explicit_id or derive_id(estimator, outcome, opts, label)
                    out.append(
                        EstimandSpec(
                            id=eid,
                            estimator=estimator,
                            outcome=outcome,
                            tag=tag,
                            family=family,
                            options=_order(opts),
                            description=str(description),
                            line=line,
                        )
                    )
    return out


def _order(opts: Mapping[str, Any]) -> dict[str, Any]:
    """Options in a fixed order (sorted by name), so that the canonical TOML is stable."""
    return {k: _plain(opts[k]) for k in sorted(opts)}


def _key_of(block: Mapping[str, Any], key: str) -> str | None:
    """Return the key to name in an error: the block's own key, else None."""
    return key if key in block else None


def _check_options(
    ctx: _Context, where: tuple, estimator: str, opts: dict[str, Any], block: Mapping[str, Any]
) -> None:
    """Types of the options a plan commonly sets (the estimator checks the rest at run time)."""
    for key in ("covariates", "member_covariates"):
        if key in opts:
            opts[key] = _check_str_list(
                ctx, where if key in block else ("defaults",), key, opts[key]
            )
    if "periods" in opts:
        opts["periods"] = _check_periods(ctx, where, opts["periods"])
    if "tau" in opts and opts["tau"] is not None:
        tau = opts["tau"]
        if (
            isinstance(tau, bool)
            or not isinstance(tau, (int, float))
            or not math.isfinite(tau)
            or tau <= 0
        ):
            raise ctx.error(
                where,
                "tau",
                f"tau is a positive number of periods; got {tau!r}",
                "write tau = 20 (5 years of quarters)",
            )
    if "members" in opts:
        m = opts["members"]
        if not (
            isinstance(m, str) or (isinstance(m, list) and m and all(isinstance(x, str) for x in m))
        ):
            raise ctx.error(
                where,
                "members",
                f"members is a role or a list of roles; got {m!r}",
                'write members = "partner"',
            )
    for key in ("start", "baseline", "min_per_arm", "min_at_risk", "n_sim", "seed", "cut"):
        if key in opts and opts[key] is not None and not _is_int(opts[key]):
            raise ctx.error(
                where if key in block else ("defaults",),
                key,
                f"must be an integer; got {opts[key]!r}",
                f"write {key} = 1",
            )


def _check_combination(
    ctx: _Context, where: tuple, estimator: str, opts: Mapping[str, Any], block: Mapping[str, Any]
) -> None:
    """Refuse combinations that no estimator can honour, before anything runs."""
    if estimator == "itt_by_period":
        if "periods" not in opts:
            raise ctx.error(
                where,
                None,
                "itt_by_period needs 'periods' (the event times to estimate)",
                "write periods = { first = -8, last = 20 }",
            )
        return
    if estimator == "spell_survival" and "horizon" not in opts:
        raise ctx.error(
            where,
            None,
            "spell_survival needs a horizon (the last event time followed)",
            "write horizon = 20",
        )
    if estimator in ("time_to_event", "spell_survival"):
        tau, h = opts.get("tau"), opts.get("horizon")
        if tau is not None and h is not None and tau > h:
            raise ctx.error(
                where,
                "tau",
                f"tau = {tau} lies beyond the horizon {h}: nothing is observed there",
                "use tau ≤ horizon",
            )
        return
    if "aggregate" in opts and "window" not in opts and _key_of(block, "aggregate"):
        raise ctx.error(
            where,
            "aggregate",
            "aggregate applies to a window (mean or sum over a ≤ k ≤ b)",
            "add window = [a, b] or remove aggregate",
        )
    if (
        estimator in ("itt", "late", "spillover", "heterogeneity")
        and "horizon" not in opts
        and "window" not in opts
    ):
        raise ctx.error(
            where,
            None,
            f"a {estimator} estimand needs a horizon or a window",
            "write horizon = 6 (18 months) or window = [1, 20]",
        )
    cov = opts.get("cov_type")
    if opts.get("cluster") is not None and isinstance(cov, str) and cov.upper().startswith("HC"):
        key = "cov_type" if "cov_type" in block else "cluster"
        raise ctx.error(
            where,
            key,
            f"cov_type {cov!r} ignores the clusters of cluster = {opts['cluster']!r}",
            'use cov_type = "CR2" (or "CR1") with clusters, or remove cluster',
        )
    if opts.get("adjustment") == "lin" and not opts.get("covariates"):
        raise ctx.error(
            where,
            "adjustment" if "adjustment" in block else None,
            "Lin's adjustment interacts the arm with covariates, and the estimand has none",
            'list covariates, or use adjustment = "none"',
        )


def _check_families(
    ctx: _Context,
    families: Mapping[str, FamilySpec],
    estimands: Sequence[EstimandSpec],
    where_of: Mapping[str, tuple],
    n_perm: int,
) -> None:
    for e in estimands:
        if e.family is not None and e.family not in families:
            raise ctx.error(
                where_of[e.id],
                "family",
                f"family '{e.family}' is not declared",
                f"declare [families.{e.family}] with a method, or use one of "
                f"{', '.join(families) or '(none declared)'}",
            )
    for name, fam in families.items():
        members = [e for e in estimands if e.family == name]
        if not members:
            raise ctx.error(
                ("families", name),
                None,
                f"family '{name}' holds no estimand",
                'remove it, or set family = "' + name + '" on its estimands',
            )
        tags = {e.tag for e in members}
        if "primary" in tags and "exploratory" in tags:
            bad = next(e for e in members if e.tag == "exploratory")
            raise ctx.error(
                where_of[bad.id],
                "family",
                f"exploratory estimand '{bad.id}' is in family '{name}', which holds primary "
                "estimands: an exploratory result would dilute the primary family",
                "move it to a secondary or exploratory family",
            )
        uses_ri = fam.resampling or fam.pvalue == "ri_p_value"
        for e in members:
            if uses_ri and e.estimator in NO_RANDOMIZATION:
                raise ctx.error(
                    where_of[e.id],
                    "family",
                    f"'{e.id}' ({e.estimator}) has no randomization test, and family '{name}' "
                    f"is adjusted on randomization draws ({fam.method}, {fam.pvalue})",
                    f'use a family with pvalue = "p_value", or no family for {e.estimator}',
                )
        if fam.resampling and n_perm == 0:
            raise ctx.error(
                ("families", name),
                "method",
                f"{fam.method} re-draws the assignment, and the plan asks for n_permutations = 0",
                "set n_permutations > 0, or use a p-value method such as holm",
            )
