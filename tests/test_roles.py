"""Stage roles from names, catalog calls/SQL and code shapes (seen-set dedup, good/bad split, pydantic)."""

from __future__ import annotations

import textwrap

import pytest

from stagegraph.catalog import load_roles
from stagegraph.facts.index import Project, index_module
from stagegraph.facts.roles import role_evidence, stage_roles
from stagegraph.source import ParsedModule, parse_text

ROLES = load_roles()


def roles_of(code: str, func: str = "step", name: str = "step") -> tuple[str, ...]:
    parsed = parse_text("x.py", textwrap.dedent(code))
    assert isinstance(parsed, ParsedModule)
    project = Project.build([index_module(parsed)])
    return stage_roles(name, project.functions[f"x.{func}"], project, ROLES)


def test_names_alone_give_weak_roles() -> None:
    project = Project.build([])
    assert stage_roles("dedup_orders", None, project, ROLES) == ("dedup",)
    assert stage_roles("validate", None, project, ROLES) == ("validate",)
    assert stage_roles("mystery", None, project, ROLES) == ()


def test_seen_set_filter_is_dedup() -> None:
    code = """
    def step(orders):
        seen, out = set(), []
        for o in orders:
            if o["id"] not in seen:
                seen.add(o["id"])
                out.append(o)
        return out
    """
    assert "dedup" in roles_of(code)


def test_dict_keyed_by_record_is_dedup() -> None:
    assert "dedup" in roles_of("def step(rows):\n    return list({r['id']: r for r in rows}.values())\n")


def test_drop_duplicates_and_distinct_on_are_dedup() -> None:
    assert "dedup" in roles_of("import pandas as pd\ndef step(p):\n    return pd.read_csv(p).drop_duplicates('id')\n")
    sql = "def step(conn):\n    conn.execute('SELECT DISTINCT ON (id) * FROM raw.orders ORDER BY id, ts DESC')\n"
    assert "dedup" in roles_of(sql)


def test_good_bad_split_is_validate() -> None:
    code = """
    def step(orders):
        good, bad = [], []
        for o in orders:
            (good if o.get("total", 0) > 0 else bad).append(o)
        return good
    """
    assert "validate" in roles_of(code)


def test_raise_per_record_is_validate() -> None:
    code = """
    def step(rows):
        for r in rows:
            if r["amount"] < 0:
                raise ValueError(r)
        return rows
    """
    assert "validate" in roles_of(code)


def test_pydantic_model_construction_is_validate() -> None:
    code = """
    from pydantic import BaseModel
    class Order(BaseModel):
        id: int
    def step(rows):
        return [Order(**r) for r in rows]
    """
    assert "validate" in roles_of(code)


@pytest.mark.parametrize(
    "call",
    ["jsonschema.validate(r, SCHEMA)", "schema.validate(frame)", "Order.model_validate(r)"],
)
def test_validation_libraries_are_validate(call: str) -> None:
    assert "validate" in roles_of(f"import jsonschema\ndef step(r, frame, schema, Order):\n    {call}\n")


@pytest.mark.parametrize(
    "body",
    [
        "return [r for r in rows if r['region'] == 'EU']",  # filtering is not validation
        "if not rows:\n        raise ValueError('no rows')\n    return rows",  # argument check outside a loop
        "return sorted(set(r['sku'] for r in rows))",
    ],
)
def test_near_misses_are_not_validate_or_dedup(body: str) -> None:
    roles = roles_of(f"def step(rows):\n    {body}\n")
    assert "validate" not in roles and "dedup" not in roles


def test_roles_come_in_catalog_order_without_repeats() -> None:
    code = "import pandas as pd\ndef step(p):\n    df = pd.read_csv(p).drop_duplicates()\n    df.to_parquet(p)\n"
    roles = roles_of(code, name="dedup_and_load")
    assert roles == tuple(dict.fromkeys(r.role for r in ROLES if r.role in roles))
    assert {"extract", "dedup", "load"} <= set(roles)


def evidence_of(code: str, name: str = "step") -> list[tuple[str, str, str, str, str]]:
    parsed = parse_text("x.py", textwrap.dedent(code))
    assert isinstance(parsed, ParsedModule)
    project = Project.build([index_module(parsed)])
    found = role_evidence(name, project.functions["x.step"], project, ROLES)
    return [(e.role, e.basis, e.before, e.code, e.after) for e in found]


@pytest.mark.parametrize(
    ("body", "evidence"),
    [
        ('return df[df["customer_id"].notna()]', ("drops rows where ", "customer_id", " is null")),
        ("return df[~df.customer_id.isnull()]", ("drops rows where ", "customer_id", " is null")),
        ("return df[df.customer_id.isnull()]", ("selects the rows where ", "customer_id", " is null")),
        ('return df.dropna(subset=["email"])', ("drops rows with missing ", '["email"]', "")),
        ('return df.loc[~df["sku"].str.match(r"^X")]',
         ("filters rows on a pattern: ", 'df["sku"].str.match(r"^X")', "")),
        ('return [r for r in df if r.get("id") is not None]',
         ("keeps only records where ", 'r.get("id") is not None', "")),
    ],
)
def test_validation_from_the_body_whatever_the_name(body: str, evidence: tuple[str, str, str]) -> None:
    assert evidence_of(f"def step(df):\n    {body}\n") == [("validate", "body", *evidence)]


def test_filling_values_in_or_dropping_columns_is_not_validation() -> None:
    fill = 'def step(df):\n    df.loc[df["country"].isnull(), "country"] = "GB"\n    return df\n'
    assert evidence_of(fill) == []
    columns = "def step(df):\n    return df.dropna(axis=1)\n"
    assert evidence_of(columns) == []


def test_skipping_records_without_a_field_is_validation() -> None:
    code = """
    def step(rows):
        out = []
        for row in rows:
            if row["email"] is None:
                continue
            out.append(row)
        return out
    """
    assert evidence_of(code) == [("validate", "body", "skips records where ", 'row["email"] is None', "")]


@pytest.mark.parametrize(
    ("body", "evidence"),
    [
        ('return df.groupby("id").first()', ("keeps one row per group: ", 'df.groupby("id").first()', "")),
        ('return df.groupby("id").head(1)', ("keeps one row per group: ", 'df.groupby("id").head(1)', "")),
        ('return db.execute("SELECT DISTINCT id, email FROM users")', ("runs SQL with ", "SELECT DISTINCT", "")),
    ],
)
def test_dedup_from_the_body(body: str, evidence: tuple[str, str, str]) -> None:
    assert [e for e in evidence_of(f"def step(df):\n    {body}\n") if e[0] == "dedup"] == [("dedup", "body", *evidence)]


def test_a_group_head_of_many_rows_is_no_dedup() -> None:
    assert [e for e in evidence_of('def step(df):\n    return df.groupby("id").head(5)\n') if e[0] == "dedup"] == []


def test_body_evidence_comes_before_the_name() -> None:
    found = evidence_of("def step(df):\n    return df.drop_duplicates()\n", name="dedup_orders")
    assert [(e[0], e[1]) for e in found] == [("dedup", "body"), ("dedup", "name")]
