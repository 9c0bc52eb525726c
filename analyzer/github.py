"""Post the Markdown report as a pull-request comment through the GitHub REST API (stdlib urllib only).

One comment per PR: the bot finds its earlier comment by the hidden marker *among comments
written by the token's own user* (a person quoting the marker is never edited) and edits it,
instead of piling up a new comment per push; an identical body is not sent again. Transient
failures (5xx, secondary rate limits, 429, 403 with `x-ratelimit-remaining: 0`) are retried with
bounded exponential backoff, except that a failed create is never blindly re-sent: the comments
are listed again first, since GitHub may have stored the first POST before answering 502.
401/403/404 fail at once with one clear line, because retrying a bad token never helps.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_API_URL = "https://api.github.com"
USER_AGENT = "stagegraph-pr-bot"


#: whose comments count as ours when the token cannot read `GET /user` (the Actions GITHUB_TOKEN)
ACTIONS_BOT = "github-actions[bot]"


class GitHubError(RuntimeError):
    """A request failed for good; the message is one line a person can act on.

    `status` is the HTTP status (None for a network error); `retry_after` is set when the failure
    was transient, so a caller that retries by itself knows how long to wait.
    """

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(slots=True)
class Client:
    """A tiny GitHub REST client: JSON in and out, retries, and pagination by `Link` headers."""

    token: str
    api_url: str = DEFAULT_API_URL
    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    timeout: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    log: Callable[[str], None] = lambda _message: None
    requests_made: int = field(default=0, init=False)

    def _origin(self) -> tuple[str, str]:
        parts = urllib.parse.urlsplit(self.api_url)
        return parts.scheme, parts.netloc

    def url(self, path: str) -> str:
        return self.api_url.rstrip("/") + path

    def request(self, method: str, url: str, body: Any = None, attempts: int | None = None
                ) -> tuple[Any, dict[str, str]]:
        """Send one API request (with up to `attempts` tries); returns the decoded JSON body and the headers."""
        limit = attempts or self.max_attempts
        scheme, netloc = urllib.parse.urlsplit(url)[:2]
        if (scheme, netloc) != self._origin():
            # never send the token to a host other than the configured API
            raise GitHubError(f"refusing to follow {url}: it is not on {self.api_url}")
        data = json.dumps(body).encode("utf-8") if body is not None else None
        for attempt in range(1, limit + 1):
            req = urllib.request.Request(url, data=data, method=method, headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": USER_AGENT,
                **({"Content-Type": "application/json"} if data is not None else {}),
            })
            self.requests_made += 1
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    raw = resp.read()
                    headers = {k.lower(): v for k, v in resp.headers.items()}
                    return (json.loads(raw) if raw.strip() else None), headers
            except urllib.error.HTTPError as exc:
                headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
                wait = self._retry_wait(exc.code, headers, attempt)
                detail = _error_detail(exc)
                if wait is None or attempt == limit:
                    raise GitHubError(_fatal_message(exc.code, method, url, detail, headers), exc.code, wait) from None
                self.log(f"GitHub answered {exc.code} to {method} {url}; retrying in {wait:.1f}s")
                self.sleep(wait)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == limit:
                    reason = getattr(exc, "reason", exc)
                    raise GitHubError(f"cannot reach {self.api_url}: {reason}", None, self._backoff(attempt)) from None
                wait = self._backoff(attempt)
                self.log(f"network error on {method} {url} ({exc}); retrying in {wait:.1f}s")
                self.sleep(wait)
        raise GitHubError(f"{method} {url} failed after {self.max_attempts} attempts")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        return float(min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))

    def _retry_wait(self, status: int, headers: dict[str, str], attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when the failure is final."""
        rate_limited = status == 429 or (
            status == 403 and (headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers)
        )
        if rate_limited:
            if "retry-after" in headers:
                try:
                    return float(min(self.backoff_cap, max(0.0, float(headers["retry-after"]))))
                except ValueError:
                    pass
            if "x-ratelimit-reset" in headers:
                try:
                    return float(min(self.backoff_cap, max(0.0, float(headers["x-ratelimit-reset"]) - time.time())))
                except ValueError:
                    pass
            return self._backoff(attempt)
        if 500 <= status < 600:
            return self._backoff(attempt)
        return None

    def paginate(self, url: str) -> list[Any]:
        """Every item of a list endpoint, following `Link: <...>; rel="next"`."""
        items: list[Any] = []
        next_url: str | None = url
        while next_url:
            page, headers = self.request("GET", next_url)
            if not isinstance(page, list):
                raise GitHubError(f"GET {next_url}: expected a list, got {type(page).__name__}")
            items.extend(page)
            next_url = _next_link(headers.get("link", ""))
        return items


def _next_link(header: str) -> str | None:
    for part in header.split(","):
        pieces = part.split(";")
        if len(pieces) < 2:
            continue
        target = pieces[0].strip()
        if any(p.strip().replace(" ", "") in ('rel="next"', "rel=next") for p in pieces[1:]):
            return target.strip("<>")
    return None


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        return ""
    message = body.get("message", "") if isinstance(body, dict) else ""
    return str(message)


def _fatal_message(status: int, method: str, url: str, detail: str, headers: dict[str, str]) -> str:
    said = f" (GitHub said: {detail})" if detail else ""
    if status == 401:
        return f"GitHub rejected the token (401){said}: check GITHUB_TOKEN"
    if status == 403:
        if headers.get("x-ratelimit-remaining") == "0":
            return f"GitHub rate limit exhausted (403) on {method} {url}{said}"
        return (f"the token may not comment on this pull request (403){said}: "
                "give it `pull-requests: write` (or `issues: write`) permission")
    if status == 404:
        return (f"not found (404) on {method} {url}{said}: check --repo and --pr, "
                "and that the token can see the repository")
    return f"{method} {url} failed with HTTP {status}{said}"


def own_logins(client: Client) -> frozenset[str]:
    """Logins whose comments are the bot's own: the token's user, else the Actions bot (GET /user is 403 there)."""
    try:
        user, _ = client.request("GET", client.url("/user"))
    except GitHubError as exc:
        if exc.status in (401, 403, 404):
            return frozenset({ACTIONS_BOT})
        raise
    login = user.get("login") if isinstance(user, dict) else None
    return frozenset({login}) if isinstance(login, str) and login else frozenset({ACTIONS_BOT})


def find_own_comment(client: Client, list_url: str, marker: str) -> dict[str, Any] | None:
    """The bot's earlier comment: it holds the marker and was written by the token's own user."""
    marked = [c for c in client.paginate(list_url) if isinstance(c, dict) and marker in str(c.get("body", ""))]
    if not marked:
        return None
    mine = own_logins(client)
    for comment in marked:
        user = comment.get("user")
        if isinstance(user, dict) and user.get("login") in mine:
            return comment
    return None


def upsert_comment(client: Client, repo: str, pr: int, body: str, marker: str, create: bool = True
                   ) -> tuple[str, str]:
    """Edit the bot's earlier comment on the PR (found by `marker`) or create one. Returns (action, url).

    The action is `updated`, `unchanged` (same body: nothing sent), `created`, or `skipped`
    (no earlier comment and `create` is False).
    """
    if marker not in body:
        body = f"{marker}\n{body}"
    owner_name = "/".join(urllib.parse.quote(part, safe="") for part in repo.split("/", 1))
    list_url = client.url(f"/repos/{owner_name}/issues/{pr}/comments?per_page=100")
    existing = find_own_comment(client, list_url, marker)
    if existing is not None:
        return _update(client, owner_name, existing, body)
    if not create:
        return "skipped", ""
    create_url = client.url(f"/repos/{owner_name}/issues/{pr}/comments")
    for attempt in range(1, client.max_attempts + 1):
        try:
            result, _ = client.request("POST", create_url, {"body": body}, attempts=1)
            return "created", str((result or {}).get("html_url", ""))
        except GitHubError as exc:
            if exc.retry_after is None or attempt == client.max_attempts:
                raise
            client.log(f"creating the comment failed ({exc}); checking whether it was stored, "
                       f"then retrying in {exc.retry_after:.1f}s")
            client.sleep(exc.retry_after)
            existing = find_own_comment(client, list_url, marker)
            if existing is not None:  # the failed POST was stored after all: never post a second one
                return _update(client, owner_name, existing, body)
    raise GitHubError(f"POST {create_url} failed after {client.max_attempts} attempts")  # pragma: no cover


def _update(client: Client, owner_name: str, comment: dict[str, Any], body: str) -> tuple[str, str]:
    url = str(comment.get("html_url", ""))
    if comment.get("body") == body:
        return "unchanged", url
    result, _ = client.request("PATCH", client.url(f"/repos/{owner_name}/issues/comments/{comment['id']}"),
                               {"body": body})
    return "updated", str((result or {}).get("html_url", url))
