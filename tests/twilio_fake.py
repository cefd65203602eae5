"""A local HTTP server on 127.0.0.1 speaking the shape of Twilio's Messages API, for tests.

Numbers ending in 0000 are refused with 21211 (invalid), 1111 with 21610 (unsubscribed), 2222
with 30007-style 400 of another code; 3333 get one 429 before they succeed.
"""

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

ACCOUNT, TOKEN = "ACtest", "secret-token"
REFUSALS = {
    "0000": (21211, "Invalid 'To' Phone Number"),
    "1111": (21610, "Unsubscribed"),
    "2222": (21408, "Permission to send an SMS has not been enabled"),
}


@dataclass
class FakeTwilio:
    requests: list[dict] = field(default_factory=list)
    throttled: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def start_twilio() -> tuple[FakeTwilio, ThreadingHTTPServer]:
    fake = FakeTwilio()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _answer(self, status: int, body: dict) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            import base64

            expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                return self._answer(401, {"code": 20003, "message": "Authenticate"})
            if self.path != f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json":
                return self._answer(404, {"code": 20404, "message": "Not found"})
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            if len(body) < length:  # the client died half-way: a request Twilio never got
                return None
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            to = form.get("To", "")
            with fake.lock:
                if to.endswith("3333") and to not in fake.throttled:
                    fake.throttled.add(to)
                    return self._answer(429, {"code": 20429, "message": "Too Many Requests"})
                fake.requests.append(form)
                sid = f"SM{len(fake.requests):032d}"
            refusal = REFUSALS.get(to[-4:])
            if refusal:
                return self._answer(400, {"code": refusal[0], "message": refusal[1], "status": 400})
            return self._answer(201, {"sid": sid, "status": "queued", "to": to})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake, server
