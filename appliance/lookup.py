"""HTTP lookups for IVR flows (``flowrun.HttpLookup``): ask a business system, off the 20 ms tick.

``LookupWorker.submit(key, url, timeout_s)`` hands a GET to a small thread pool and
returns at once; ``results()`` (called from the tick) takes the answers that are
in: ``(key, ok, fields)``. A JSON object's values become string fields (nested
values as JSON text); any other body is the field ``text``. A failure (refused,
timed out, a status other than 2xx, a body over 64 KiB, a body that is not
UTF-8 or GBK) is ``ok`` False with ``fields["error"]`` saying what happened, so
the flow takes its ``on_error`` branch and the journal tells why.
"""

from __future__ import annotations

import json
import logging
import queue
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
USER_AGENT = "callcentre-appliance/ivr"


def fetch(url: str, timeout_s: float) -> tuple[bool, dict[str, str]]:
    """One GET: (ok, fields). Never raises."""
    if not url.startswith(("http://", "https://")):
        return False, {"error": f"not an http(s) URL: {url[:80]}"}
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:  # noqa: S310 (scheme checked above)
            body = resp.read(MAX_BODY + 1)
            kind = resp.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        return False, {"error": f"HTTP {exc.code} {exc.reason}"}
    except (urllib.error.URLError, OSError, ValueError) as exc:  # refused, DNS, timeout, bad URL
        reason = getattr(exc, "reason", exc)
        return False, {"error": f"{type(reason).__name__}: {reason}"[:200]}
    if len(body) > MAX_BODY:
        return False, {"error": f"answer larger than {MAX_BODY} bytes"}
    for encoding in ("utf-8", "gbk"):  # Chinese business systems still answer in GBK now and then
        try:
            text = body.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        return False, {"error": "answer is neither UTF-8 nor GBK text"}
    if kind == "application/json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            return False, {"error": f"answer is not valid JSON: {exc}"[:200]}
        if isinstance(data, dict):
            return True, {str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                          for k, v in data.items()}
    return True, {"text": text.strip()}


class LookupWorker:
    """A few threads doing ``fetch`` for the flows of every call; results collected by the tick."""

    def __init__(self, threads: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ivr-lookup")
        self._done: queue.SimpleQueue = queue.SimpleQueue()

    def submit(self, key: object, url: str, timeout_s: float) -> None:
        def run() -> None:
            ok, fields = fetch(url, timeout_s)
            if not ok:
                log.info("IVR lookup %s failed: %s", url, fields["error"])
            self._done.put((key, ok, fields))
        self._pool.submit(run)

    def results(self) -> list[tuple[object, bool, dict[str, str]]]:
        out = []
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
