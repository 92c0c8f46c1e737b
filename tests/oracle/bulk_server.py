#!/usr/bin/env python3
"""An independent FHIR Bulk Data $export server for rxsync's export tests.

Standard-library http.server plus PyJWT (with cryptography) to verify the
SMART Backend Services client assertion; nothing of rxsync. Usage:

    bulk_server.py KEYS_JSON [--interrupt] [--require-token]

KEYS_JSON maps a kid to {"alg": "RS384"|"ES384", "pem": PUBLIC_PEM_PATH}.
Prints "PORT <n>" on stdout once listening. Records what it received, which
GET /_record returns as JSON (never a token; only whether one was valid).
--interrupt: the first download of file 1 sends half its body and drops
the connection (the export stops; a resume must not start over).
--foreign-error-file: the manifest lists the error file at http://localhost:PORT,
another origin than the 127.0.0.1 the client was configured with: the bearer must
not go there (the download is refused with 401 and recorded).
--stall: the first download of file 1 sends half its body and then waits,
so that the test can SIGKILL the client mid-download.
"""
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import jwt

CLIENT_ID = "rxsync"
KEYS = {}
INTERRUPT = "--interrupt" in sys.argv
STALL = "--stall" in sys.argv
FOREIGN = "--foreign-error-file" in sys.argv
REQUIRE_TOKEN = "--require-token" in sys.argv
LOCK = threading.Lock()
# "issued" holds the access tokens handed out, so that the test can look
# for them, by value, where they must never be (output, logs, the database).
RECORD = {"tokens": [], "kickoffs": [], "status_polls": 0, "downloads": {}, "deletes": 0,
          "refused": [], "issued": []}
TOKENS = set()
JTIS = set()
EXPORTS = {}
TRANSACTION_TIME = "2026-12-01T10:00:00.000Z"
FILES = {
    "0": ("MedicationRequest", "\n".join(json.dumps(r) for r in [
        {"resourceType": "MedicationRequest", "id": "mr1", "status": "active", "intent": "order",
         "subject": {"reference": "Patient/p1"},
         "medicationCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "00071015523"}]}},
        {"resourceType": "MedicationRequest", "id": "mr2", "status": "active", "intent": "order",
         "subject": {"reference": "Patient/p2"},
         "medicationCodeableConcept": {"text": "lisinopril 10 mg tablet"}},
    ]) + "\n"),
    "1": ("Patient", "\n".join(json.dumps(r) for r in [
        {"resourceType": "Patient", "id": "p1", "name": [{"family": "Ames", "given": ["Ann"]}]},
        {"resourceType": "Patient", "id": "p2", "name": [{"family": "Bell", "given": ["Bo"]}]},
    ]) + "\n"),
}
ERROR_FILE = json.dumps({"resourceType": "OperationOutcome", "issue": [
    {"severity": "error", "code": "processing", "diagnostics": "Patient/p3 could not be exported"}]}) + "\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body=b"", ctype="application/fhir+json", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def base(self):
        return "http://%s" % self.headers.get("Host")

    def authorized(self):
        auth = self.headers.get("Authorization", "")
        ok = auth.startswith("Bearer ") and auth[7:] in TOKENS
        if not ok:
            with LOCK:
                RECORD["refused"].append(urlparse(self.path).path)
            self.send(401, json.dumps({"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "login", "diagnostics": "a valid bearer token is required"}]}))
        return ok

    def do_POST(self):
        if urlparse(self.path).path != "/token":
            return self.send(404)
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        entry = {"grant_type": form.get("grant_type"), "scope": form.get("scope"),
                 "client_assertion_type": form.get("client_assertion_type")}
        try:
            assertion = form["client_assertion"]
            header = jwt.get_unverified_header(assertion)
            key = KEYS[header["kid"]]
            entry["alg"] = header["alg"]
            entry["kid"] = header["kid"]
            if header["alg"] != key["alg"]:
                raise ValueError("alg %s is not the key's %s" % (header["alg"], key["alg"]))
            token_url = self.base() + "/token"
            claims = jwt.decode(assertion, key["pem"], algorithms=[key["alg"]], audience=token_url,
                                issuer=CLIENT_ID, options={"require": ["exp", "jti", "iss", "sub", "aud"]})
            if claims["sub"] != CLIENT_ID:
                raise ValueError("sub is not the client id")
            if claims["exp"] - time.time() > 300 + 5:
                raise ValueError("exp is more than five minutes away")
            if claims["jti"] in JTIS:
                raise ValueError("jti replayed")
            JTIS.add(claims["jti"])
            if form.get("grant_type") != "client_credentials":
                raise ValueError("grant_type")
            if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
                raise ValueError("client_assertion_type")
        except Exception as exc:  # refused: say why, as a token endpoint would
            entry["verified"] = False
            entry["why"] = str(exc)
            with LOCK:
                RECORD["tokens"].append(entry)
            return self.send(400, json.dumps({"error": "invalid_client", "error_description": str(exc)}),
                             "application/json")
        entry["verified"] = True
        token = uuid.uuid4().hex
        TOKENS.add(token)
        with LOCK:
            RECORD["tokens"].append(entry)
            RECORD["issued"].append(token)
        self.send(200, json.dumps({"access_token": token, "token_type": "bearer", "expires_in": 300,
                                   "scope": form.get("scope", "")}), "application/json")

    def do_GET(self):
        url = urlparse(self.path)
        path = url.path
        if path == "/_record":
            with LOCK:
                return self.send(200, json.dumps(RECORD), "application/json")
        open_file = path.startswith("/files/") and not REQUIRE_TOKEN
        if open_file and self.headers.get("Authorization"):
            with LOCK:
                RECORD["unexpected_bearer"] = RECORD.get("unexpected_bearer", 0) + 1
        if path.startswith("/files/"):
            with LOCK:
                RECORD.setdefault("file_auth", {})[path.rsplit("/", 1)[1]] = bool(self.headers.get("Authorization"))
        if not open_file and not self.authorized():
            return
        if path.endswith("/$export"):
            with LOCK:
                RECORD["kickoffs"].append({"path": path, "query": parse_qs(url.query),
                                           "prefer": self.headers.get("Prefer"),
                                           "accept": self.headers.get("Accept")})
            if self.headers.get("Prefer") != "respond-async":
                return self.send(400)
            eid = uuid.uuid4().hex[:8]
            EXPORTS[eid] = 0
            return self.send(202, headers=[("Content-Location", self.base() + "/status/" + eid)])
        if path.startswith("/status/"):
            eid = path.rsplit("/", 1)[1]
            if eid not in EXPORTS:
                return self.send(404)
            with LOCK:
                RECORD["status_polls"] += 1
            EXPORTS[eid] += 1
            if EXPORTS[eid] <= 2:
                return self.send(202, headers=[("Retry-After", "1"), ("X-Progress", "step %d of 2" % EXPORTS[eid])])
            manifest = {"transactionTime": TRANSACTION_TIME, "request": "x",
                        "requiresAccessToken": REQUIRE_TOKEN,
                        "output": [{"type": FILES[n][0], "url": "%s/files/%s/%s.ndjson" % (self.base(), eid, n)}
                                   for n in sorted(FILES)],
                        "error": [{"type": "OperationOutcome", "url": "%s/files/%s/error.ndjson" % (
                            self.base().replace("127.0.0.1", "localhost") if FOREIGN else self.base(), eid)}]}
            return self.send(200, json.dumps(manifest), "application/json")
        if path.startswith("/files/"):
            name = path.rsplit("/", 1)[1].split(".")[0]
            with LOCK:
                RECORD["downloads"][name] = RECORD["downloads"].get(name, 0) + 1
                count = RECORD["downloads"][name]
            body = (ERROR_FILE if name == "error" else FILES[name][1]).encode()
            if STALL and name == "1" and count == 1:
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+ndjson")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                time.sleep(30)
                self.close_connection = True
                return
            if INTERRUPT and name == "1" and count == 1:
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+ndjson")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            return self.send(200, body, "application/fhir+ndjson")
        self.send(404)

    def do_DELETE(self):
        if not self.authorized():
            return
        eid = urlparse(self.path).path.rsplit("/", 1)[1]
        with LOCK:
            RECORD["deletes"] += 1
        EXPORTS.pop(eid, None)
        self.send(202)


def main():
    for kid, k in json.load(open(sys.argv[1])).items():
        KEYS[kid] = {"alg": k["alg"], "pem": open(k["pem"]).read()}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
