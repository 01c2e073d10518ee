"""Alerts for people: redacted text, Slack-compatible webhook posts, coverage comparisons.

Plain Python (no Dagster): the Dagster layer (``defs/alerts.py``) decides *when* to alert;
this module decides *what* the message says and makes sure posting it can never fail the
caller (a receiver that is down or slow only costs a warning).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx

logger = logging.getLogger(__name__)

#: A URL inside free text (error messages, reasons): a scheme, ``://`` and no whitespace.
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s<>\"'`|]+")
REDACTED = "[redacted]"


def redact_urls(text: str) -> str:
    """``text`` with every URL's credentials, query and fragment replaced by ``[redacted]``.

    Error messages quote URLs (database DSNs with passwords, signed URLs, webhook tokens);
    an alert channel is read by more people than the run log, so only scheme, host, port
    and path survive.
    """
    return _URL.sub(lambda match: _redact_url(match.group(0)), text)


def _redact_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # an unparsable port or host: keep nothing but the scheme
        return f"{url.split('://', 1)[0]}://{REDACTED}"
    userinfo = f"{REDACTED}@" if "@" in parts.netloc else ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return urlunsplit(
        (
            parts.scheme,
            f"{userinfo}{host}{port}",
            parts.path,
            REDACTED if parts.query else "",
            REDACTED if parts.fragment else "",
        )
    )


def first_line(text: str) -> str:
    """The first non-blank line of ``text`` (an error's headline), redacted."""
    for line in text.splitlines():
        if line.strip():
            return redact_urls(line.strip())
    return ""


def post_webhook(url: str, text: str, *, timeout: float) -> bool:
    """POST ``{"text": text}`` (Slack's incoming-webhook shape) to ``url``; never raises.

    Returns whether the receiver accepted it (2xx). Failures are logged without the URL,
    which usually carries the webhook's secret.
    """
    try:
        response = httpx.post(url, json={"text": text}, timeout=timeout)
    except httpx.HTTPError as error:
        logger.warning("alert webhook unreachable: %s", type(error).__name__)
        return False
    if not response.is_success:
        logger.warning("alert webhook answered HTTP %s", response.status_code)
        return False
    return True


@dataclass(frozen=True)
class CoverageSnapshot:
    """One coverage report in numbers: catalog size, artists with an image, failures."""

    artists: int
    with_image: int
    failures: Mapping[str, int] = field(default_factory=dict)

    @property
    def image_share(self) -> float:
        """Percentage of catalog artists the app can show an image for."""
        return 100.0 * self.with_image / self.artists if self.artists else 100.0

    def failure_share(self, outcome: str) -> float:
        return 100.0 * self.failures.get(outcome, 0) / self.artists if self.artists else 0.0


def coverage_problems(
    previous: CoverageSnapshot,
    current: CoverageSnapshot,
    *,
    drop_points: float,
    spike_points: float,
) -> list[str]:
    """Why ``current`` is worse than ``previous`` (empty: nothing to say).

    Two reports are compared, not a report and a threshold, so a coverage that stays low
    is reported once, when it drops, not at every report after.
    """
    problems = []
    drop = previous.image_share - current.image_share
    if drop > drop_points:
        problems.append(
            f"artists with an image: {previous.image_share:.1f}% -> "
            f"{current.image_share:.1f}% ({current.with_image}/{current.artists}), "
            f"down {drop:.1f} points"
        )
    for outcome in sorted(current.failures):
        rise = current.failure_share(outcome) - previous.failure_share(outcome)
        if rise > spike_points:
            problems.append(
                f"failed with {outcome}: {previous.failures.get(outcome, 0)} -> "
                f"{current.failures[outcome]} artists, up {rise:.1f} points"
            )
    return problems
