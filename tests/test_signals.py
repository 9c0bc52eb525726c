"""Hazard signals from small snippets: what fires, and the near-misses that must not."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from stagegraph.facts import signals as sig
from stagegraph.facts.index import Project, index_module
from stagegraph.model import SIGNAL_KINDS
from stagegraph.source import ParsedModule, parse_text

EXAMPLES = Path("/work/shared/examples")


def project_of(code: str, relpath: str = "x.py") -> Project:
    parsed = parse_text(relpath, textwrap.dedent(code))
    assert isinstance(parsed, ParsedModule)
    return Project.build([index_module(parsed)])


def kinds(code: str, func: str = "func") -> list[tuple[str, str]]:
    project = project_of(code)
    return [(s.kind, s.detail) for s in sig.function_signals(project.functions[f"x.{func}"], project)]


def only(code: str, kind: str, func: str = "func") -> list[str]:
    return [detail for k, detail in kinds(code, func) if k == kind]


# ---------------------------------------------------------------- broad-except-swallow

@pytest.mark.parametrize(
    ("handler", "detail"),
    [
        ("except Exception:\n        pass", "except Exception: pass"),
        ("except:\n        continue", "bare except: continue"),
        ("except BaseException:\n        return None", "except BaseException: return None"),
        ("except (ValueError, Exception):\n        return []", "except Exception: return a default"),
        ("except Exception as exc:\n        log.warning('failed %s', exc)", f"except Exception: {sig.LOGGED_ONLY}"),
    ],
)
def test_broad_handlers_that_drop_the_failure(handler: str, detail: str) -> None:
    header = "import logging\nlog = logging.getLogger()\n"
    code = f"{header}def func(rows):\n  for r in rows:\n    try:\n        send(r)\n    {handler}\n"
    assert only(code, sig.BROAD_EXCEPT_SWALLOW) == [detail]


@pytest.mark.parametrize(
    "handler",
    [
        "except Exception:\n        log.exception('failed')\n        raise",  # re-raise after logging
        "except ValueError:\n        pass",  # narrow
        "except Exception as exc:\n        failures.append((r, exc))",  # recorded
        "except Exception as exc:\n        raise LoadError(r) from exc",
    ],
)
def test_handlers_that_keep_the_failure_are_near_misses(handler: str) -> None:
    code = f"def func(rows, failures, log):\n  for r in rows:\n    try:\n        send(r)\n    {handler}\n"
    assert only(code, sig.BROAD_EXCEPT_SWALLOW) == []


# ---------------------------------------------------------------- executors and gather

@pytest.mark.parametrize(("body", "dropped"), [
    ("with ThreadPoolExecutor(max_workers=4) as ex:\n        for r in rows:\n            ex.submit(load, r)", True),
    ("pool = multiprocessing.Pool(4)\n    for r in rows:\n        pool.apply_async(load, (r,))", True),
    # near-misses: the futures are kept (and read), or an error callback receives the exception
    ("with ThreadPoolExecutor(max_workers=4) as ex:\n        futures = [ex.submit(load, r) for r in rows]\n"
     "    return [f.result(timeout=60) for f in futures]", False),
    ("pool = multiprocessing.Pool(4)\n    for r in rows:\n        pool.apply_async(load, (r,), error_callback=log)",
     False),
    ("with ThreadPoolExecutor(max_workers=4) as ex:\n        done = ex.submit(load, rows)\n    return done.result(1)",
     False),
])
def test_a_task_submitted_as_a_statement_drops_its_exception(body: str, dropped: bool) -> None:
    code = f"import multiprocessing\nfrom concurrent.futures import ThreadPoolExecutor\n\ndef func(rows):\n    {body}\n"
    found = only(code, sig.FUTURE_DROPPED)
    assert bool(found) is dropped, found


def test_uncapped_and_capped_executors() -> None:
    code = """
    import concurrent.futures as cf
    from multiprocessing import Pool
    def func(keys):
        with cf.ThreadPoolExecutor() as a, cf.ProcessPoolExecutor(max_workers=4) as b, Pool() as c:
            pass
        cf.ThreadPoolExecutor(len(keys))
        cf.ThreadPoolExecutor(max_workers=None)
    """
    found = kinds(code)
    assert [d for k, d in found if k == sig.EXECUTOR_UNCAPPED] == [
        "ThreadPoolExecutor() with no max_workers",
        "Pool() with no processes",
        "ThreadPoolExecutor() with max_workers=len(keys) grows with the input",
        "ThreadPoolExecutor() with no max_workers",
    ]
    assert [d for k, d in found if k == sig.EXECUTOR_CAPPED] == ["ProcessPoolExecutor() with max_workers=4"]


def test_gather_over_a_collection_without_semaphore() -> None:
    code = """
    import asyncio
    async def func(ids):
        return await asyncio.gather(*(fetch(i) for i in ids))
    """
    assert len(only(code, sig.GATHER_UNBOUNDED)) == 1


def test_gather_with_a_semaphore_is_bounded() -> None:
    code = """
    import asyncio
    async def func(ids):
        limit = asyncio.Semaphore(10)
        async def one(i):
            async with limit:
                return await fetch(i)
        return await asyncio.gather(*(one(i) for i in ids))
    """
    assert only(code, sig.GATHER_UNBOUNDED) == []


def test_gather_of_a_limited_coroutine_is_bounded() -> None:
    code = """
    import asyncio
    LIMIT = asyncio.Semaphore(8)
    async def fetch(i):
        async with LIMIT:
            return i
    async def func(ids):
        return await asyncio.gather(*(fetch(i) for i in ids))
    """
    assert only(code, sig.GATHER_UNBOUNDED) == []


def test_taskgroup_task_per_iteration() -> None:
    code = """
    import asyncio
    async def func(ids):
        async with asyncio.TaskGroup() as tg:
            for i in ids:
                tg.create_task(fetch(i))
    """
    assert len(only(code, sig.GATHER_UNBOUNDED)) == 1


def test_gather_of_fixed_arguments_is_not_unbounded() -> None:
    code = "import asyncio\nasync def func():\n    return await asyncio.gather(a(), b())\n"
    assert only(code, sig.GATHER_UNBOUNDED) == []


# ---------------------------------------------------------------- waits and remote calls

def test_waits_without_timeout() -> None:
    code = """
    from concurrent.futures import as_completed, wait
    def func(futures, thread, q, res):
        [f.result() for f in as_completed(futures)]
        wait(futures)
        thread.join()
        q.get()
        res.get(block=True)
    """
    assert only(code, sig.WAIT_NO_TIMEOUT) == [
        "f.result() without timeout", "as_completed() without timeout", "wait() without timeout",
        "thread.join() without timeout", "q.get() without timeout", "res.get() without timeout",
    ]


def test_waits_with_timeouts_and_lookalikes_do_not_fire() -> None:
    code = """
    from concurrent.futures import as_completed, wait
    def func(futures, thread, q, config, parts):
        [f.result(timeout=5) for f in as_completed(futures, timeout=60)]
        wait(futures, 30)
        thread.join(10)
        q.get(timeout=1)
        config.get("key")
        ",".join(parts)
    """
    assert only(code, sig.WAIT_NO_TIMEOUT) == []


def test_a_storage_objects_get_is_a_download_but_an_async_result_still_waits() -> None:
    code = """
    import queue
    def func(s3, app, task_id):
        s3.Object("raw", "a.csv").get()
        s3.Bucket("raw").Object("a.csv").get()
        app.AsyncResult(task_id).get()
        queue.Queue().get()
    """
    assert only(code, sig.WAIT_NO_TIMEOUT) == [
        "app.AsyncResult(task_id).get() without timeout", "queue.Queue().get() without timeout",
    ]


def test_remote_calls_without_timeout() -> None:
    code = """
    import requests, httpx
    session = requests.Session()
    def func(url):
        requests.get(url)
        requests.post(url, json={}, timeout=None)
        session.get(url)
        requests.get(url, timeout=10)
        session.post(url, timeout=5)
        httpx.get(url)
        httpx.get(url, timeout=None)
    """
    assert only(code, sig.REMOTE_NO_TIMEOUT) == [
        "get request to url without timeout=",
        "post request to url without timeout=",
        "Session.get to url without timeout=",
        "get request to url with timeout=None",
    ]


@pytest.mark.parametrize(("body", "fires"), [
    ("smtp = smtplib.SMTP('mail.example.com')", True),
    ("ftp = ftplib.FTP(host=HOST)", True),
    ("sock = socket.create_connection((HOST, 25))", True),
    ("ssh = paramiko.SSHClient()\n    ssh.connect(HOST, username='etl')", True),
    # near-misses: a timeout, or no host (the constructor does not connect yet)
    ("smtp = smtplib.SMTP('mail.example.com', timeout=30)", False),
    ("ftp = ftplib.FTP(HOST, 'u', 'p', '', 30)", False),
    ("smtp = smtplib.SMTP()", False),
    ("ssh = paramiko.SSHClient()\n    ssh.connect(HOST, username='etl', timeout=10)", False),
])
def test_standard_library_and_ssh_clients_connecting_without_timeout(body: str, fires: bool) -> None:
    code = f"import ftplib\nimport smtplib\nimport socket\n\nimport paramiko\n\nHOST = 'x'\n\ndef func():\n    {body}\n"
    assert bool(only(code, sig.REMOTE_NO_TIMEOUT)) is fires


def test_session_on_self_is_followed() -> None:
    code = """
    import requests
    class Client:
        def __init__(self):
            self.http = requests.Session()
        def fetch(self, url):
            return self.http.get(url)
    """
    project = project_of(code)
    found = sig.function_signals(project.functions["x.Client.fetch"], project)
    assert [s.kind for s in found] == [sig.REMOTE_NO_TIMEOUT]


# ---------------------------------------------------------------- retries

def test_retry_loop_around_post() -> None:
    code = """
    import requests, time
    def func(url, payload):
        for attempt in range(5):
            try:
                requests.post(url, json=payload, timeout=10)
                break
            except requests.RequestException:
                time.sleep(2 ** attempt)
    """
    (detail,) = only(code, sig.RETRY_NONIDEMPOTENT)
    assert "retry loop" in detail and "HTTP POST" in detail


def test_retry_decorator_around_insert() -> None:
    code = """
    from tenacity import retry
    @retry
    def func(conn, row):
        conn.execute("INSERT INTO staging.orders VALUES (%s, %s)", row)
    """
    (detail,) = only(code, sig.RETRY_NONIDEMPOTENT)
    assert detail.startswith("@tenacity.retry around an SQL INSERT")


@pytest.mark.parametrize(
    "body",
    [
        'conn.execute("INSERT INTO t VALUES (%s) ON CONFLICT (id) DO NOTHING", row)',
        'requests.post(url, json=row, headers={"Idempotency-Key": row["id"]}, timeout=5)',
        "requests.put(url, json=row, timeout=5)",
        'conn.execute("SELECT * FROM t WHERE id = %s", row)',
    ],
)
def test_idempotent_writes_under_retry_are_near_misses(body: str) -> None:
    code = f"import requests\nfrom tenacity import retry\n@retry\ndef func(conn, url, row):\n    {body}\n"
    assert only(code, sig.RETRY_NONIDEMPOTENT) == []


def test_post_without_retry_is_not_a_retry_signal() -> None:
    code = "import requests\ndef func(url):\n    requests.post(url, timeout=5)\n"
    assert only(code, sig.RETRY_NONIDEMPOTENT) == []


def test_retry_loop_through_an_analysed_callee() -> None:
    code = """
    def publish(channel, body):
        channel.basic_publish("", "orders", body)
    def func(channel, body):
        for _ in range(3):
            try:
                publish(channel, body)
                return
            except ConnectionError:
                continue
    """
    (detail,) = only(code, sig.RETRY_NONIDEMPOTENT)
    assert "publish()" in detail and "queue publish" in detail


def test_retried_task_whose_post_is_calls_below_through_an_object_it_builds() -> None:
    # `@task(retries=1)` -> `submit_all()` -> `api.submit()` on `api = Ingestion.from_secret(...)`:
    # the POST is three analysed calls down, one of them a method of an object the helper builds
    code = """
    import requests
    from airflow.decorators import task

    class Ingestion:
        @classmethod
        def from_secret(cls, secret):
            return cls()
        def submit(self, item):
            return requests.post("https://ingest.example.org/items", json=item, timeout=30)

    def submit_all(items, secret):
        api = Ingestion.from_secret(secret)
        for item in items:
            api.submit(item)

    @task(retries=1)
    def func(items):
        submit_all(items, "stac")
    """
    (detail,) = only(code, sig.RETRY_NONIDEMPOTENT)
    assert "submit_all()" in detail and "HTTP POST" in detail and "in submit()" in detail


def test_a_helper_that_speaks_of_idempotency_is_taken_at_its_word_below_a_retry() -> None:
    code = """
    import requests
    from tenacity import retry

    def post_once(item):
        return requests.post("https://api.example.org/items", json=item, headers={"Idempotency-Key": item["id"]})

    def send(item):
        post_once(item)

    @retry
    def func(item):
        send(item)
    """
    assert only(code, sig.RETRY_NONIDEMPOTENT) == []


# ---------------------------------------------------------------- order-dependent-state

@pytest.mark.parametrize(
    "loop",
    [
        "total = 0\n    for r in rows:\n        total += r['amount']\n        r['running'] = total",
        "seq = 0\n    out = []\n    for r in rows:\n        seq += 1\n        out.append({**r, 'seq': seq})",
        "prev = None\n    for r in rows:\n        if prev is not None:\n            r['gap'] = r['ts'] - prev['ts']\n"
        "        prev = r",
        "state = 'header'\n    out = []\n    for line in rows:\n        if state == 'header':\n"
        "            out.append(line)\n            state = 'body'\n"
        "        elif line == '':\n            state = 'header'",
    ],
)
def test_loops_carrying_state_into_records(loop: str) -> None:
    code = f"def func(rows):\n    {loop}\n    return rows\n"
    assert len(only(code, sig.ORDER_DEPENDENT_STATE)) == 1


@pytest.mark.parametrize(
    "loop",
    [
        # a seen set used for dedup is not order-dependent state
        "seen, out = set(), []\n    for o in rows:\n        if o['id'] not in seen:\n            seen.add(o['id'])\n"
        "            out.append(o)",
        # an aggregate returned after the loop is commutative
        "total = 0\n    for r in rows:\n        total += r['amount']\n    rows.append(total)",
        # batching flushes but never writes the state into records
        "batch = []\n    for r in rows:\n        batch.append(r)\n        if len(batch) >= 100:\n"
        "            flush(batch)\n            batch = []",
        # a temporary assigned and used within one iteration
        "for r in rows:\n        amount = r['units'] * r['price']\n        r['amount'] = amount",
        # counting retries
        "for attempt in range(3):\n        n = attempt\n        rows.append(n)",
        # a name made afresh from an inner loop's element, then extended within the same iteration
        "out = []\n    for t in rows:\n        for f in t['fields']:\n            name = f['name'].lower()\n"
        "            name += '_id'\n            out.append(name)",
    ],
)
def test_loops_without_carried_state_are_near_misses(loop: str) -> None:
    code = f"def func(rows):\n    {loop}\n    return rows\n"
    assert only(code, sig.ORDER_DEPENDENT_STATE) == []


def test_a_counter_carried_through_an_inner_loop_is_still_state() -> None:
    code = ("def func(rows):\n    seq = 0\n    out = []\n    for t in rows:\n        for f in t['fields']:\n"
            "            seq += 1\n            out.append((f, seq))\n    return out\n")
    assert set(only(code, sig.ORDER_DEPENDENT_STATE)) == {
        "running value `seq` is updated per record and written into the output"}


def test_pandas_cumsum_within_a_stage_is_not_a_signal() -> None:
    code = "def func(frame):\n    frame['session'] = (frame['ts'].diff().dt.seconds > 1800).cumsum()\n"
    assert only(code, sig.ORDER_DEPENDENT_STATE) == []


# ---------------------------------------------------------------- task-per-row

def test_task_per_row_of_a_query_through_a_callee() -> None:
    code = """
    def list_keys(conn):
        cur = conn.cursor()
        cur.execute("SELECT key FROM media.images")
        return [r[0] for r in cur.fetchall()]
    def func(conn, app):
        keys = list_keys(conn)
        for k in keys:
            app.process.delay(k)
    """
    assert len(only(code, sig.TASK_PER_ROW)) == 1


def test_task_per_row_on_a_capped_executor_is_a_near_miss() -> None:
    code = """
    from concurrent.futures import ThreadPoolExecutor
    def func(cur):
        rows = cur.fetchall()
        with ThreadPoolExecutor(max_workers=8) as pool:
            [pool.submit(handle, r) for r in rows]
    """
    assert only(code, sig.TASK_PER_ROW) == []


def test_tasks_over_a_plain_list_are_not_per_row() -> None:
    code = "def func(pool, files):\n    return [pool.submit(handle, f) for f in files]\n"
    assert only(code, sig.TASK_PER_ROW) == []


# ---------------------------------------------------------------- driver blocks and examples

def test_body_signals_for_a_driver_block() -> None:
    project = project_of("import requests\nif __name__ == '__main__':\n    requests.get('https://x.example')\n")
    module = project.modules["x"]
    block = module.parsed.tree.body[-1]
    assert isinstance(block, __import__("libcst").If)
    found = sig.body_signals(list(block.body.body), module, project)
    assert [(s.kind, s.line, s.file) for s in found] == [(sig.REMOTE_NO_TIMEOUT, 3, "x.py")]


def test_every_emitted_kind_is_declared() -> None:
    code = (
        "import requests\ndef func(u):\n    try:\n        requests.get(u)\n"
        "    except Exception:\n        pass\n"
    )
    assert {k for k, _ in kinds(code)} <= SIGNAL_KINDS


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="shared examples not present")
def test_labelled_examples_produce_the_expected_signals() -> None:
    found: dict[str, set[tuple[str, str]]] = {}
    for path in sorted(EXAMPLES.glob("*.py")):
        parsed = parse_text(path.name, path.read_text(encoding="utf-8"))
        assert isinstance(parsed, ParsedModule)
        project = Project.build([index_module(parsed)])
        for qualname, fn in project.functions.items():
            for s in sig.function_signals(fn, project):
                found.setdefault(path.stem, set()).add((qualname.split(".")[-1], s.kind))
    assert found == {
        "image_fanout": {
            ("make_thumbnail", sig.BROAD_EXCEPT_SWALLOW),
            ("backfill", sig.EXECUTOR_UNCAPPED),
            ("backfill", sig.TASK_PER_ROW),
            ("backfill", sig.WAIT_NO_TIMEOUT),
        },
        "invoice_run": {("send", sig.BROAD_EXCEPT_SWALLOW)},
    }


@pytest.mark.parametrize(
    ("code", "fires"),
    [
        # a per-customer running balance written into each record: order matters
        ("def func(rows):\n    bal = {}\n    for r in rows:\n        bal[r['c']] = bal.get(r['c'], 0) + r['x']\n"
         "        r['balance'] = bal[r['c']]\n    return rows\n", True),
        # per-key sequence numbers: order matters
        ("def func(rows):\n    n = {}\n    for r in rows:\n        n[r['c']] = n[r['c']] + 1 if r['c'] in n else 1\n"
         "        r['seq'] = n[r['c']]\n    return rows\n", True),
        # a per-key aggregate that is never written back into the records: a sum, order-free
        ("def func(rows):\n    tot = {}\n    for r in rows:\n        tot[r['c']] = tot.get(r['c'], 0) + r['x']\n"
         "    return tot\n", False),
        # a field of the record computed from another field of the same record
        ("def func(rows):\n    for r in rows:\n        r['net'] = r['gross'] - r['tax']\n    return rows\n", False),
    ],
)
def test_keyed_running_values(code: str, fires: bool) -> None:
    assert bool(only(code, sig.ORDER_DEPENDENT_STATE)) is fires


# ---------------------------------------------------------------- swallowed failures of external systems

def swallow_signals(handler: str, header: str = "") -> list[str]:
    from stagegraph.catalog import load_resources

    code = f"{header}def func(rows, conn, log):\n  for r in rows:\n    try:\n        send(r)\n    {handler}\n"
    project = project_of(code)
    found = sig.function_signals(project.functions["x.func"], project, load_resources().failures)
    return [s.detail for s in found if s.kind == sig.BROAD_EXCEPT_SWALLOW]


@pytest.mark.parametrize(
    ("header", "handler", "expected"),
    [
        ("import psycopg2\n", "except psycopg2.Error:\n        conn.rollback()",
         ["except psycopg2.Error: rollback only"]),
        ("from botocore.exceptions import ClientError\n", "except ClientError:\n        return False",
         ["except ClientError: return a default"]),
        ("import logging\n", "except Exception as e:\n        logging.error(e)\n        continue",
         ["except Exception: logged, then continue"]),
        ("import pandas as pd\n", "except Exception:\n        log.warning('x')\n        return pd.DataFrame()",
         ["except Exception: logged, then return a default"]),
        ("", "except:\n        print('failed')", ["bare except: logged only"]),
        ("", "except Exception:\n        log.warning('failed')", ["except Exception: logged only"]),
        ("", "except FileNotFoundError:\n        return {}", []),  # about the data, not a failed system
        ("import psycopg2\n", "except psycopg2.Error:\n        conn.rollback()\n        raise", []),
    ],
)
def test_handlers_that_drop_a_failed_system(header: str, handler: str, expected: list[str]) -> None:
    assert swallow_signals(handler, header) == expected


def test_failure_classes_come_only_from_the_catalog() -> None:
    code = "import psycopg2\ndef func(conn):\n  try:\n    conn.commit()\n  except psycopg2.Error:\n    pass\n"
    project = project_of(code)
    assert [s.kind for s in sig.function_signals(project.functions["x.func"], project)] == []


@pytest.mark.parametrize(
    ("body", "fires"),
    [
        # a per-file frame whose fixed column is rewritten: nothing crosses iterations
        ("    for f in rows:\n        df = read(f)\n        df['date'] = fix(df['date'])\n"
         "        out.append(df)\n", False),
        # fields copied into locals before the write: `record.item_id` does not read a name `item_id`
        ("    for r in rows:\n        item_id = r.item_id\n        out.append((item_id, r.v))\n", False),
        # the running total that restarts per account is still state
        ("    total = 0\n    for r in rows:\n        if r['new']:\n            total = 0\n        total += r['v']\n"
         "        r['total'] = total\n", True),
        # a per-key running value keyed by the record
        ("    seen = {}\n    for r in rows:\n        seen[r['k']] = seen.get(r['k'], 0) + 1\n"
         "        r['n'] = seen[r['k']]\n", True),
        # counters reset for each record (under a loop-invariant option) and counted over its tokens
        ("    for doc in rows:\n        if fix:\n            nouns, verbs = 0, 0\n            for t in doc:\n"
         "                if t == 'N':\n                    nouns += 1\n                else:\n"
         "                    verbs += 1\n            out.append((nouns, verbs))\n", False),
        # ...but a reset in one branch and a use outside it carries the last record's count over
        ("    for doc in rows:\n        if fix:\n            nouns = 0\n        for t in doc:\n"
         "            nouns += 1\n        out.append(nouns)\n", True),
    ],
)
def test_locals_assigned_afresh_per_record_are_not_state(body: str, fires: bool) -> None:
    code = f"def func(rows, out, read, fix):\n{body}"
    assert bool(only(code, sig.ORDER_DEPENDENT_STATE)) is fires
