"""The example web service: GET /healthz answers "ok", GET / describes the instance.

``python3 app.py --check`` is the container's own health check (exit 0 when /healthz answers 200).
"""

import json
import os
import signal
import socket
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PORT", "8080"))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/healthz":
            body, status, kind = b"ok\n", 200, "text/plain"
        elif self.path == "/":
            info = {"app": os.environ.get("APP_NAME", "web"), "host": socket.gethostname(),
                    "python": sys.version.split()[0]}
            body, status, kind = (json.dumps(info) + "\n").encode(), 200, "application/json"
        else:
            body, status, kind = b"not found\n", 404, "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # one line per request on stderr
        sys.stderr.write("%s %s\n" % (self.address_string(), format % args))


def check() -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=2) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(check())
    # As PID 1 the process gets no default SIGTERM action: without this, every stop waits out podman's timeout.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
