"""HTTP lookups for IVR flows (``flowrun.HttpLookup``): ask a business system, off the 20 ms tick.

``LookupWorker.submit(key, url, timeout_s)`` hands a GET to a small thread pool and
returns at once; ``results()`` (called from the tick) takes the answers that are
in: ``(key, ok, fields)``. A JSON object's values become string fields (nested
values as JSON text); any other body is the field ``text``. A failure (refused,
timed out, a status other than 2xx, a body over 64 KiB, a body that is not
UTF-8 or GBK) is ``ok`` False with ``fields["error"]`` saying what happened, so
the flow takes its ``on_error`` branch and the journal tells why. The request
itself (size limit, UTF-8 then GBK, errors) is ``httpfetch.request``.
"""

from __future__ import annotations

import json
import logging

from . import httpfetch
from .httpfetch import MAX_BODY
from .offtick import OffTick

log = logging.getLogger(__name__)
HEADERS = {"User-Agent": "callcentre-appliance/ivr", "Accept": "application/json"}


def fetch(url: str, timeout_s: float) -> tuple[bool, dict[str, str]]:
    """One GET: (ok, fields). Never raises."""
    reply = httpfetch.request(url, timeout_s, headers=HEADERS, max_body=MAX_BODY)
    if reply.status is None:
        return False, {"error": reply.error}
    if not 200 <= reply.status < 300:
        return False, {"error": f"HTTP {reply.status} {reply.reason}"}
    if reply.error:  # too large, or neither UTF-8 nor GBK
        return False, {"error": reply.error}
    text = reply.text
    if reply.content_type == "application/json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            return False, {"error": f"answer is not valid JSON: {exc}"[:200]}
        if isinstance(data, dict):
            return True, {str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                          for k, v in data.items()}
    return True, {"text": text.strip()}


class LookupWorker:
    """A few threads doing ``fetch`` for the flows of every call; results collected by the tick.

    Parameters
    ----------
    threads : int
        Lookups at once; 0 fetches inside ``submit`` (virtual-time tests: deterministic, but it blocks).
    """

    def __init__(self, threads: int = 4) -> None:
        self._work = OffTick("ivr-lookup", threads)

    def submit(self, key: object, url: str, timeout_s: float) -> None:
        def run() -> tuple[object, bool, dict[str, str]]:
            try:
                ok, fields = fetch(url, timeout_s)
            except Exception as exc:  # noqa: BLE001 (a fetch bug must still answer, or the caller waits forever)
                ok, fields = False, {"error": f"{type(exc).__name__}: {exc}"[:200]}
            if not ok:
                log.info("IVR lookup %s failed: %s", url, fields["error"])
            return key, ok, fields
        self._work.submit(run)

    def results(self) -> list[tuple[object, bool, dict[str, str]]]:
        """``(key, ok, fields)`` of the lookups finished since the last call; never blocks."""
        return self._work.results()

    def wait(self, timeout: float | None = None) -> bool:
        """Virtual time only: block until every lookup has its answer (True) or ``timeout`` passes (False)."""
        return self._work.wait(timeout)

    def close(self) -> None:
        self._work.close()
