"""The bundled catalogs load, unknown keys are rejected naming file and key, and split files don't clash."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from stagegraph import catalog
from stagegraph.catalog import CatalogError, bundled, load_resources, load_roles, load_rules, rules_dir

ROLES = {"extract", "validate", "dedup", "transform", "enrich", "aggregate", "load", "notify"}


def test_every_bundled_catalog_loads() -> None:
    assert len(load_rules()) >= 10
    assert {r.role for r in load_roles()} == ROLES
    resources = load_resources()
    assert resources.factories and resources.methods and resources.calls
    for path in rules_dir().glob("*.toml"):
        with path.open("rb") as fh:
            tomllib.load(fh)  # every file is valid TOML, including ones no loader reads yet


@pytest.mark.parametrize(
    ("stem", "table", "entry", "loader"),
    [
        ("rules", "rule", {"id": "x", "severity": "note", "title": "t", "summary": "s", "why": "w", "bad": "b",
                           "good": "g", "fix": "f", "sevrity": "note"}, catalog._load_rules),
        ("roles", "role", {"role": "dedup", "name_pattern": ["dedup*"]}, catalog._load_roles),
        ("resources", "factory", {"call": "x.connect", "kind": "database", "type": "x", "threadsafe": False},
         catalog._load_resources),
        ("resources", "method", {"type": "x", "names": ["get"], "efect": "read"}, catalog._load_resources),
        ("resources", "call", {"call": "x.get", "kind": "http", "targets": "url:0:url"}, catalog._load_resources),
    ],
)
def test_unknown_keys_are_rejected_with_file_and_key(
    tmp_path: Path, stem: str, table: str, entry: dict[str, object], loader: object
) -> None:
    lines = [f"[[{table}]]"] + [f"{k} = {_toml(v)}" for k, v in entry.items()]
    path = tmp_path / f"{stem}-typo.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bad_key = next(k for k in entry if k not in _allowed(table))
    with pytest.raises(CatalogError) as info:
        loader((path,))  # type: ignore[operator]
    assert str(path) in str(info.value)
    assert repr(bad_key) in str(info.value)


def test_unknown_top_level_table_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "roles-extra.toml"
    path.write_text('[[roles]]\nrole = "dedup"\n', encoding="utf-8")
    with pytest.raises(CatalogError, match="'roles'"):
        catalog._load_roles((path,))


def test_library_catalog_never_overrides_a_core_entry() -> None:
    """A `call` or `factory` key repeated in a later file silently replaces the earlier model."""
    core, *extra = bundled("resources")
    seen = _keys(core)
    for path in extra:
        clash = seen & _keys(path)
        assert not clash, f"{path.name} repeats entries of {core.name}: {sorted(clash)}"


def test_library_coverage_named_in_the_issue() -> None:
    resources = load_resources()
    known = set(resources.factories) | set(resources.calls)
    for name in [
        "sqlalchemy.create_engine", "psycopg2.connect", "psycopg.connect", "sqlite3.connect", "pymysql.connect",
        "pyodbc.connect", "cx_Oracle.connect", "oracledb.connect", "snowflake.connector.connect",
        "google.cloud.bigquery.Client", "requests.get", "httpx.Client", "aiohttp.ClientSession",
        "urllib3.PoolManager", "boto3.client", "google.cloud.storage.Client", "redis.Redis", "pymongo.MongoClient",
        "elasticsearch.Elasticsearch", "kafka.KafkaProducer", "confluent_kafka.Producer", "pika.BlockingConnection",
        "pandas.read_csv", "pyarrow.parquet.write_table", "polars.read_parquet", "open", "shutil.move",
        "threading.Lock", "multiprocessing.Lock",
    ]:
        assert name in known, name
    assert resources.methods_of("boto3.client", "send_message") is not None  # SQS
    assert resources.methods_of("boto3.client", "put_item") is not None  # DynamoDB
    assert resources.methods_of("pika.Channel", "basic_publish") is not None


def test_unsafe_handles_are_marked_unsafe() -> None:
    factories = load_resources().factories
    assert factories["psycopg2.connect"].thread_safe is False
    assert factories["pymysql.connect"].thread_safe is False
    assert factories["sqlalchemy.create_engine"].thread_safe is True
    assert factories["pika.BlockingConnection"].thread_safe is False


def _keys(path: Path) -> set[str]:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    keys: set[str] = set()
    for table in ("factory", "call"):
        for entry in data.get(table, []):
            calls = entry["call"] if isinstance(entry["call"], list) else [entry["call"]]
            keys |= {f"{table}:{c}" for c in calls}
    return keys


def _allowed(table: str) -> tuple[str, ...]:
    return {
        "rule": catalog._RULE_KEYS, "role": catalog._ROLE_KEYS, "factory": catalog._FACTORY_KEYS,
        "method": catalog._METHOD_KEYS, "call": catalog._CALL_KEYS,
    }[table]


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return f'"{value}"'


def test_pool_checkouts_are_marked_and_checkout_must_be_a_bool(tmp_path: Path) -> None:
    checkouts = {(m.type, n) for m in load_resources().methods if m.checkout for n in m.names}
    assert ("dbapi.Pool", "getconn") in checkouts
    assert ("dbapi.Connection", "cursor") not in checkouts
    path = tmp_path / "resources-typo.toml"
    path.write_text('[[method]]\ntype = "x.Pool"\nnames = ["get"]\ncheckout = "yes"\n', encoding="utf-8")
    with pytest.raises(CatalogError, match="checkout"):
        catalog._load_resources((path,))


@pytest.mark.parametrize(("entry", "complaint"), [
    ('receiver = ["read", "not an attribute"]', "receiver"),
    ('location = "s3://{0:bucket}/{key"', "location"),
    ('location = "s3://{bucket name}/"', "location"),
])
def test_method_receiver_and_location_are_validated(tmp_path: Path, entry: str, complaint: str) -> None:
    path = tmp_path / "resources-typo.toml"
    path.write_text(f'[[method]]\ntype = "*"\nnames = ["csv"]\n{entry}\n', encoding="utf-8")
    with pytest.raises(CatalogError, match=complaint):
        catalog._load_resources((path,))


def test_the_nearest_receiver_attribute_decides_between_models() -> None:
    resources = load_resources()
    read = resources.any_method("parquet", ("option", "read"))
    write = resources.any_method("parquet", ("mode", "write", "csv", "read"))
    assert read is not None and read.effect == "read"
    assert write is not None and write.effect == "write"
    assert resources.any_method("parquet", ("frame",)) is None  # `frame.parquet(...)`: not Spark's reader
    assert resources.in_memory("io.StringIO") and not resources.in_memory("open")
