"""The one choke point for every NCBI E-utilities request.

Requests are built by Biopython (`Bio.Entrez._build_request`, pure) and sent here, where this module
owns everything NCBI asks of a client: `tool`/`email`/`api_key` on every request, one process-wide
rate limit (3 requests/s, 10/s with an API key; when configured, also a slot of the Prefect global
rate limit "ncbi" that every process shares, see `tasks.runtime.take_rate_limit_slot`), exponential
backoff with jitter on HTTP 429, 5xx, timeouts and connection errors, and a bounded number of tries. `Bio.Entrez.max_tries` is set to 1 so
Biopython never adds its own immediate retries on top (FIELD-NOTES: it retries 429/5xx without
sleeping). Every request is a POST, so the API key never appears in a URL we build. A server can still
quote it back (in an error body, a header, a redirect): every error raised here is an `EntrezError`, whose
message is redacted when it is made (`livingmeta.redaction.RedactedError`), and nothing else escapes this
choke point with the request in it (unexpected exceptions are turned into an `EntrezError` too, unchained).
"""

from __future__ import annotations

import http.client
import random
import socket
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

from Bio import Entrez

from livingmeta.redaction import RedactedError, redact_text
from tasks import runtime

NCBI_EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
DEFAULT_TOOL = "livingmeta"

# Biopython's own retry loop would multiply ours (it retries 429/5xx at once, without sleeping)
Entrez.max_tries = 1


class EntrezError(RedactedError, RuntimeError):
    """An E-utilities request failed for good (after retries, or a request NCBI refuses); message redacted."""


class RateLimiter:
    """Spaces requests at least `interval` seconds apart across every thread of the process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self._lock = threading.Lock()
        self._next = 0.0
        self._clock = clock
        self._sleep = sleep

    def wait(self, interval: float) -> float:
        """Block until this caller may send; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + interval
        delay = slot - now
        if delay > 0:
            self._sleep(delay)
        return delay


# NCBI counts requests per client (IP / API key), not per review: one limiter for the whole process
NCBI_RATE_LIMITER = RateLimiter()


@dataclass
class EntrezSettings:
    """How to reach E-utilities. The API key is never shown (repr) and never sent in a URL."""

    base_url: str = NCBI_EUTILS_URL
    email: str | None = None
    tool: str = DEFAULT_TOOL
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    max_tries: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    requests_per_second: float | None = None  # None: NCBI's limit (10 with a key, 3 without)

    @property
    def interval(self) -> float:
        rate = self.requests_per_second or (10.0 if self.api_key else 3.0)
        return 1.0 / rate


class EntrezClient:
    """Sends E-utilities requests through the shared limiter with bounded, jittered retries."""

    def __init__(self, settings: EntrezSettings, limiter: RateLimiter = NCBI_RATE_LIMITER,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        if settings.max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        self.settings = settings
        self.limiter = limiter
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.n_requests = 0
        self.n_retries = 0
        if not settings.email:
            warnings.warn("NCBI asks every E-utilities client for a contact email: set LIVINGMETA_NCBI_EMAIL",
                          UserWarning, stacklevel=2)

    def request(self, utility: str, params: dict[str, str]) -> bytes:
        """POST one E-utility (e.g. "esearch.fcgi") and return the body of its HTTP 200 answer.

        Raises:
            EntrezError: NCBI refused the request (4xx other than 429), or it still failed after
                `max_tries` tries; the message names the utility and the last problem, never the key.
        """
        try:
            return self._request(utility, params)
        except EntrezError:
            raise
        except Exception as e:  # noqa: BLE001 - anything else may carry the request (and key) in its text
            raise EntrezError(f"{utility}: the request failed ({type(e).__name__}: {redact_text(str(e))})") from None

    def _request(self, utility: str, params: dict[str, str]) -> bytes:
        s = self.settings
        full = dict(params)
        full["tool"] = s.tool
        if s.email:
            full["email"] = s.email
        if s.api_key:
            full["api_key"] = s.api_key
        url = s.base_url.rstrip("/") + "/" + utility
        last = "no attempt made"
        for attempt in range(1, s.max_tries + 1):
            with warnings.catch_warnings():
                # Biopython's advice (set Entrez.email) does not apply here; see EntrezClient.__init__
                warnings.simplefilter("ignore", UserWarning)
                request = Entrez._build_request(url, dict(full), post=True)
            self.limiter.wait(s.interval)
            # other processes (other reviews, workers) share NCBI's per-client budget through the Prefect server
            runtime.take_rate_limit_slot("ncbi")
            self.n_requests += 1
            retry_after: float | None = None
            try:
                with urllib.request.urlopen(request, timeout=s.timeout) as response:
                    return response.read()
            except urllib.error.HTTPError as e:
                body = _read_quietly(e)
                # NCBI echoes the request (api_key included) in some error bodies: redact before keeping it
                last = redact_text(f"HTTP {e.code} {e.reason}" + (f": {body}" if body else ""))
                if e.code != 429 and e.code < 500:
                    raise EntrezError(f"{utility}: NCBI refused the request ({last}); check the query and settings") from None
                retry_after = _retry_after(e.headers.get("Retry-After") if e.headers else None)
            except (TimeoutError, socket.timeout):
                last = f"no answer within {s.timeout:g} s (timeout)"
            except urllib.error.URLError as e:
                last = redact_text(f"connection failed ({e.reason})")
            except (http.client.HTTPException, ConnectionError, OSError) as e:
                last = redact_text(f"connection broke while reading the answer ({type(e).__name__}: {e})")
            if attempt < s.max_tries:
                self.n_retries += 1
                self.sleep(self.backoff(attempt, retry_after))
        raise EntrezError(f"{utility}: gave up after {s.max_tries} tries; last problem: {last}. NCBI may be down or "
                          "rate-limiting; the next scheduled update will try again from the last committed watermark.")

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try `attempt + 1`: exponential, capped, with equal jitter."""
        s = self.settings
        ceiling = min(s.backoff_max, s.backoff_base * 2 ** (attempt - 1))
        delay = ceiling / 2 + self.rng.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, s.backoff_max))
        return delay


def _read_quietly(e: urllib.error.HTTPError, limit: int = 200) -> str:
    try:
        body = (e.read(1 << 16) or b"").decode("utf-8", "replace")
    except Exception:  # the error body is only decoration for the message
        return ""
    # redact the whole body before cutting it: a secret cut in half would no longer be recognised
    return (redact_text(body) or "")[:limit].strip()


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
