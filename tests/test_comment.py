"""The PR bot against a fake GitHub API on 127.0.0.1: upsert by marker, pagination, retries, clear failures."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stagegraph.cli import REPORT_MARKER, main
from stagegraph.engine import make_report
from stagegraph.github import Client, GitHubError, upsert_comment
from stagegraph.model import Finding
from stagegraph.render.json import to_dict


@dataclass
class Scripted:
    """One canned answer: status, JSON body, headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeGitHub:
    """Records requests; answers from per-(method, path) scripts, then from a tiny in-memory comment store."""

    url: str = ""
    requests: list[tuple[str, str, Any, dict[str, str]]] = field(default_factory=list)
    scripts: dict[tuple[str, str], list[Scripted]] = field(default_factory=dict)
    comments: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 2
    #: the token's user (`GET /user`); None answers 403, as for the Actions GITHUB_TOKEN
    login: str | None = "stagegraph-bot"
    #: statuses to answer to POSTs that were nevertheless stored (a 502 after the write)
    fail_after_create: list[int] = field(default_factory=list)

    def script(self, method: str, path: str, *answers: Scripted) -> None:
        self.scripts.setdefault((method, path), []).extend(answers)

    def handle(self, method: str, path: str, body: Any) -> Scripted:
        queued = self.scripts.get((method, path.split("?")[0]))
        if queued:
            return queued.pop(0)
        route = path.split("?")[0].strip("/").split("/")
        if method == "GET" and route == ["user"]:
            if self.login is None:
                return Scripted(403, {"message": "Resource not accessible by integration"})
            return Scripted(200, {"login": self.login, "type": "Bot"})
        if method == "GET" and route[-1] == "comments":
            query = dict(p.split("=") for p in path.partition("?")[2].split("&") if "=" in p)
            page = int(query.get("page", "1"))
            chunk = self.comments[(page - 1) * self.page_size: page * self.page_size]
            headers = {}
            if page * self.page_size < len(self.comments):
                base = path.split("?")[0]
                headers["Link"] = (f'<{self.url}{base}?per_page=100&page={page + 1}>; rel="next", '
                                   f'<{self.url}{base}?page=9>; rel="last"')
            return Scripted(200, chunk, headers)
        if method == "POST" and route[-1] == "comments":
            comment = {"id": 1000 + len(self.comments), "body": body["body"],
                       "html_url": f"https://x/c/{len(self.comments)}",
                       "user": {"login": self.login or "github-actions[bot]"}}
            self.comments.append(comment)
            if self.fail_after_create:
                return Scripted(self.fail_after_create.pop(0), {"message": "Bad Gateway"})
            return Scripted(201, comment)
        if method == "PATCH" and route[-2] == "comments":
            for comment in self.comments:
                if comment["id"] == int(route[-1]):
                    if comment.get("user", {}).get("login") != (self.login or "github-actions[bot]"):
                        return Scripted(403, {"message": "You cannot edit someone else's comment"})
                    comment["body"] = body["body"]
                    return Scripted(200, comment)
        return Scripted(404, {"message": "Not Found"})


@pytest.fixture
def api() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            fake.requests.append((self.command, self.path, body, dict(self.headers.items())))
            answer = fake.handle(self.command, self.path, body)
            payload = json.dumps(answer.body).encode() if answer.body is not None else b""
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


def _client(api: FakeGitHub, sleeps: list[float] | None = None) -> Client:
    record = sleeps if sleeps is not None else []
    return Client("t0ken", api.url, sleep=record.append, max_attempts=4)


def _report_file(tmp_path: Path, delta: dict[str, Any] | None = None) -> Path:
    finding = Finding("dedup-before-validation", "error", "`dedup` runs before `validate`", "etl/driver.py", 6,
                      "f" * 20)
    data = to_dict(make_report((), (finding,), (), 3))
    if delta is not None:
        data["delta"] = delta
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_creates_then_updates_its_own_comment(api: FakeGitHub) -> None:
    api.comments = [{"id": 1, "body": "LGTM"}, {"id": 2, "body": "nit"}, {"id": 3, "body": "other bot"}]
    client = _client(api)
    action, _ = upsert_comment(client, "acme/etl", 7, "report v1", REPORT_MARKER)
    assert action == "created"
    assert api.comments[-1]["body"] == f"{REPORT_MARKER}\nreport v1"
    action, _ = upsert_comment(client, "acme/etl", 7, f"{REPORT_MARKER}\nreport v2", REPORT_MARKER)
    assert action == "updated"
    assert len(api.comments) == 4
    assert api.comments[-1]["body"] == f"{REPORT_MARKER}\nreport v2"
    methods = [(m, p.split("?")[0]) for m, p, _, _ in api.requests]
    # two list pages per upsert (4 comments, 2 per page), following Link rel="next"; then whose the marked one is
    assert methods[-4:] == [("GET", "/repos/acme/etl/issues/7/comments"), ("GET", "/repos/acme/etl/issues/7/comments"),
                            ("GET", "/user"), ("PATCH", "/repos/acme/etl/issues/comments/1003")]
    headers = api.requests[0][3]
    assert headers["Authorization"] == "Bearer t0ken"
    assert headers["Accept"] == "application/vnd.github+json"


def test_finds_its_comment_on_a_later_page(api: FakeGitHub) -> None:
    ours = {"id": 77, "body": f"{REPORT_MARKER}\nold", "user": {"login": "stagegraph-bot"}}
    api.comments = [{"id": i, "body": f"c{i}"} for i in range(1, 6)] + [ours]
    action, _ = upsert_comment(_client(api), "acme/etl", 7, "new", REPORT_MARKER)
    assert action == "updated"
    assert [p for m, p, _, _ in api.requests if m == "GET" and "comments" in p][-1].endswith("page=3")
    assert api.comments[-1]["body"] == f"{REPORT_MARKER}\nnew"


def test_retries_5xx_then_succeeds_with_backoff(api: FakeGitHub) -> None:
    api.script("GET", "/repos/acme/etl/issues/7/comments", Scripted(500), Scripted(502))
    sleeps: list[float] = []
    action, _ = upsert_comment(_client(api, sleeps), "acme/etl", 7, "x", REPORT_MARKER)
    assert action == "created"
    assert sleeps == [1.0, 2.0]


def test_rate_limits_honour_retry_after_and_reset(api: FakeGitHub) -> None:
    api.script("POST", "/repos/acme/etl/issues/7/comments",
               Scripted(429, {"message": "slow down"}, {"Retry-After": "0"}),
               Scripted(403, {"message": "API rate limit exceeded"}, {"x-ratelimit-remaining": "0",
                                                                      "x-ratelimit-reset": "0"}))
    sleeps: list[float] = []
    action, _ = upsert_comment(_client(api, sleeps), "acme/etl", 7, "x", REPORT_MARKER)
    assert action == "created"
    assert sleeps == [0.0, 0.0]


def test_gives_up_after_bounded_attempts(api: FakeGitHub) -> None:
    api.script("GET", "/repos/acme/etl/issues/7/comments", *[Scripted(503)] * 10)
    sleeps: list[float] = []
    with pytest.raises(GitHubError, match="HTTP 503"):
        upsert_comment(_client(api, sleeps), "acme/etl", 7, "x", REPORT_MARKER)
    assert sleeps == [1.0, 2.0, 4.0]  # 4 attempts, backoff doubles


@pytest.mark.parametrize(
    ("status", "headers", "message"),
    [(401, {}, "rejected the token (401)"), (403, {}, "may not comment on this pull request (403)"),
     (404, {}, "not found (404)")],
)
def test_auth_and_missing_fail_at_once(api: FakeGitHub, status: int, headers: dict[str, str], message: str) -> None:
    api.script("GET", "/repos/acme/etl/issues/7/comments", Scripted(status, {"message": "nope"}, headers))
    sleeps: list[float] = []
    with pytest.raises(GitHubError, match=re.escape(message)):
        upsert_comment(_client(api, sleeps), "acme/etl", 7, "x", REPORT_MARKER)
    assert sleeps == [] and len(api.requests) == 1


def test_never_follows_pagination_to_another_host(api: FakeGitHub) -> None:
    api.script("GET", "/repos/acme/etl/issues/7/comments",
               Scripted(200, [], {"Link": '<http://127.0.0.2:1/steal?page=2>; rel="next"'}))
    with pytest.raises(GitHubError, match="refusing to follow"):
        upsert_comment(_client(api), "acme/etl", 7, "x", REPORT_MARKER)


def test_comment_command_end_to_end(api: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    monkeypatch.setenv("GITHUB_API_URL", api.url)
    delta = {"base_ref": "origin/main", "base_commit": "a" * 40, "findings": {"new": 1, "fixed": 0, "unchanged": 2},
             "dependencies_added": [{"pipeline": "etl/driver.py::main", "from": "dedup", "to": "validate",
                                     "kind": "data"}],
             "dependencies_removed": [], "parallel_groups_gained": [], "parallel_groups_lost": []}
    report = _report_file(tmp_path, delta)
    runner = CliRunner()
    result = runner.invoke(main, ["comment", "--report", str(report), "--repo", "acme/etl", "--pr", "7"])
    assert result.exit_code == 0, result.output
    assert "created the stagegraph comment on acme/etl#7" in result.output
    body = api.comments[0]["body"]
    assert REPORT_MARKER in body
    assert "dedup-before-validation" in body
    assert "Changes since `origin/main`" in body and "`validate` depends on `dedup`" in body
    result = runner.invoke(main, ["comment", "--report", str(report), "--repo", "acme/etl", "--pr", "7"])
    assert result.exit_code == 0 and "left the stagegraph comment unchanged" in result.output
    assert [m for m, *_ in api.requests].count("PATCH") == 0
    report = _report_file(tmp_path, {**delta, "base_ref": "origin/release"})
    result = runner.invoke(main, ["comment", "--report", str(report), "--repo", "acme/etl", "--pr", "7"])
    assert result.exit_code == 0 and "updated" in result.output
    assert len(api.comments) == 1


@pytest.mark.parametrize(("status", "message"), [(401, "check GITHUB_TOKEN"), (404, "check --repo and --pr")])
def test_comment_command_fails_with_one_clear_line(api: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   status: int, message: str) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "bad")
    monkeypatch.setenv("GITHUB_API_URL", api.url)
    api.script("GET", "/repos/acme/etl/issues/7/comments", Scripted(status, {"message": "Bad credentials"}))
    result = CliRunner().invoke(main, ["comment", "--report", str(_report_file(tmp_path)), "--repo", "acme/etl",
                                       "--pr", "7"])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_comment_command_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    report = _report_file(tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["comment", "--report", str(report), "--repo", "acme/etl", "--pr", "7"])
    assert result.exit_code == 2 and "GITHUB_TOKEN is not set" in result.output
    result = runner.invoke(main, ["comment", "--report", str(report), "--repo", "acme", "--pr", "7"])
    assert result.exit_code == 2 and "expected OWNER/NAME" in result.output
    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    result = runner.invoke(main, ["comment", "--report", str(tmp_path / "bad.json"), "--repo", "a/b", "--pr", "1"])
    assert result.exit_code == 2 and "not a stagegraph JSON report" in result.output
    dry = runner.invoke(main, ["comment", "--report", str(report), "--repo", "a/b", "--pr", "1", "--dry-run"])
    assert dry.exit_code == 0 and REPORT_MARKER in dry.output


def test_a_create_that_was_stored_before_a_502_is_not_posted_twice(api: FakeGitHub) -> None:
    api.fail_after_create = [502]
    sleeps: list[float] = []
    action, _ = upsert_comment(_client(api, sleeps), "acme/etl", 7, "report", REPORT_MARKER)
    assert action == "unchanged"  # found on the second listing, with the body it was going to send
    assert len(api.comments) == 1
    assert [m for m, *_ in api.requests].count("POST") == 1 and sleeps == [1.0]


def test_a_comment_quoting_the_marker_is_never_edited(api: FakeGitHub) -> None:
    quoted = {"id": 5, "body": f"why does the bot write {REPORT_MARKER}?", "user": {"login": "alice"}}
    api.comments = [dict(quoted)]
    action, _ = upsert_comment(_client(api), "acme/etl", 7, "report", REPORT_MARKER)
    assert action == "created"
    assert api.comments[0] == quoted and "PATCH" not in [m for m, *_ in api.requests]


def test_the_actions_token_matches_the_actions_bot(api: FakeGitHub) -> None:
    api.login = None  # GET /user is 403 for the GITHUB_TOKEN of a workflow
    api.comments = [{"id": 5, "body": f"{REPORT_MARKER}\nquoted", "user": {"login": "alice"}},
                    {"id": 9, "body": f"{REPORT_MARKER}\nold", "user": {"login": "github-actions[bot]"}}]
    action, _ = upsert_comment(_client(api), "acme/etl", 7, "new", REPORT_MARKER)
    assert action == "updated"
    assert api.comments[1]["body"] == f"{REPORT_MARKER}\nnew" and api.comments[0]["body"].endswith("quoted")


def test_a_clean_pull_request_gets_a_short_comment_or_none(api: FakeGitHub, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from workflow_helpers import make_repo, stagegraph

    job = ("import requests\n\n\ndef fetch():\n    return requests.get('https://x/{i}').json()\n\n\n"
           "def save(rows):\n    requests.post('https://y/{i}', json=rows, timeout=5)\n\n\n"
           "def main():\n    rows = fetch()\n    save(rows)\n")
    jobs = {f"jobs/job{i}.py": job.format(i=i) for i in range(12)}
    root = make_repo(tmp_path / "repo", jobs)
    audit = stagegraph(root, "audit", ".", "--diff-base", "main", "--out-dir", "out")
    assert audit.returncode == 0, audit.stderr
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    monkeypatch.setenv("GITHUB_API_URL", api.url)
    args = ["comment", "--report", str(root / "out/report.json"), "--repo", "acme/etl", "--pr", "7"]
    full = CliRunner().invoke(main, [*args, "--when-clean", "full", "--dry-run"]).output
    skipped = CliRunner().invoke(main, [*args, "--when-clean", "skip"])
    assert skipped.exit_code == 0 and "no stagegraph comment posted" in skipped.output and api.comments == []
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and "created" in result.output
    body = api.comments[0]["body"]
    assert "no new findings" in body and "12 pipelines" in body and "12 findings known before this change" in body
    assert len(body) < 1_000 < len(full) and "<details>" not in body and "job7" not in body
