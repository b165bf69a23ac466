"""Column schemas of the five input tables (the data contract of DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TableSchema", "SCHEMAS", "HOUSEHOLD_ROLES", "LIPRO_ROLES", "PANEL_CATEGORICAL", "KEY_COLUMNS"]


@dataclass(frozen=True)
class TableSchema:
    """What a table must and may hold.

    Attributes
    ----------
    name
        Table name as users know it (``assignment``, ``panel``…).
    required
        Columns that must be present (tuples of alternatives: one of them).
    keys
        Pseudonymised key columns (checked for national-register-like values).
    binary
        Columns that may only hold 0 / 1 (or booleans; missing allowed).
    nonnegative
        Amounts and counts that cannot be negative.
    unique
        Columns whose combination identifies a row.
    """

    name: str
    required: tuple[tuple[str, ...], ...]
    keys: tuple[str, ...] = ()
    binary: tuple[str, ...] = ()
    nonnegative: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()
    file_stem: str = field(default="")


_BINARY_STATUS = ("employed", "self_employed", "temp_agency", "permanent_contract", "on_di",
                  "authorised_work", "work_on_di")
_AMOUNTS = ("earnings", "fte", "days_worked", "n_jobs", "di_benefit", "unemployment_benefit",
            "social_assistance")

SCHEMAS: dict[str, TableSchema] = {
    "assignment": TableSchema(
        name="assignment",
        required=(("person_id",), ("arm",), ("randomization_date", "randomization_period")),
        keys=("person_id", "household_id"),
        unique=("person_id",),
    ),
    "panel": TableSchema(
        name="panel",
        required=(("person_id",), ("period",)),
        keys=("person_id", "employer_id"),
        binary=_BINARY_STATUS,
        nonnegative=_AMOUNTS,
        unique=("person_id", "period"),
    ),
    "households": TableSchema(
        name="households",
        required=(("household_id",), ("person_id",), ("role",)),
        keys=("household_id", "person_id"),
    ),
    "benefits": TableSchema(
        name="benefits",
        required=(("person_id",), ("month",)),
        keys=("person_id",),
        binary=("on_di", "authorised_work"),
        nonnegative=("di_benefit", "unemployment_benefit", "social_assistance"),
        unique=("person_id", "month"),
    ),
    "takeup": TableSchema(
        name="takeup",
        required=(("person_id",), ("ips_started", "ips_start_date")),
        keys=("person_id",),
        binary=("ips_started",),
        unique=("person_id",),
    ),
}

KEY_COLUMNS = ("person_id", "household_id", "index_person_id", "employer_id", "partner_id")

#: Roles of household members relative to the randomized (index) person.
HOUSEHOLD_ROLES = ("index", "partner", "child", "parent", "other")

#: National Register LIPRO positions → role of a member who is not the index person.
#: (The index person is recognised by key, whatever its LIPRO code.)
LIPRO_ROLES = {
    "SING": "other", "MAR0": "partner", "MAR+": "partner", "UNM0": "partner", "UNM+": "partner",
    "CMAR": "child", "CUNM": "child", "C1PA": "child", "H1PA": "parent",
    "NFRP": "other", "OTHR": "other", "COLL": "other",
}

#: Panel columns that are codes, not quantities: never used as numeric outcomes.
PANEL_CATEGORICAL = ("sep_code", "worker_class", "nace", "joint_committee", "employer_id", "di_phase")
