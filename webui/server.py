"""Run a WSGI app on cheroot's threaded server in a background thread."""

from __future__ import annotations

import errno
import os
import threading

from cheroot import wsgi

from appliance.errors import ApplianceError

NUM_THREADS = 16  # each open dashboard holds one thread for its event stream


class Server:
    """A started cheroot server; ``port`` is the real one (useful with port 0)."""

    def __init__(self, app, host: str, port: int, numthreads: int = NUM_THREADS) -> None:
        self.app = app
        self.host = host
        self._wsgi = wsgi.Server((host, port), app, numthreads=numthreads, shutdown_timeout=2, timeout=10)
        try:
            self._wsgi.prepare()
        except OSError as e:
            if os.strerror(errno.EADDRINUSE) in str(e) or e.errno == errno.EADDRINUSE:
                raise ApplianceError(f"port {port} on {host} is already in use") from None
            raise ApplianceError(f"cannot listen on {host} port {port}: {' '.join(str(e).split())}") from None
        self.port: int = self._wsgi.bind_addr[1]
        self._thread = threading.Thread(target=self._wsgi.serve, name=f"webui:{self.port}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def stop(self) -> None:
        """End open event streams, stop accepting, and wait for the worker threads."""
        stopping = getattr(self.app, "config", {}).get("webui.stopping")
        if stopping is not None:
            stopping.set()
        self._wsgi.stop()
        self._thread.join(5)


def serve(app, host: str, port: int) -> Server:
    """Listen on ``host``:``port`` and serve ``app`` from a background thread until ``stop()``."""
    return Server(app, host, port)
