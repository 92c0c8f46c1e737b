#!/usr/bin/env python3
"""An independent OAuth 1.0a three-legged provider for rxsync's tests.

Standard-library http.server around oauthlib 4.0.1's server endpoints
(RequestTokenEndpoint, AuthorizationEndpoint, AccessTokenEndpoint,
ResourceEndpoint) over one RequestValidator; nothing of rxsync. Usage:

    oauth1_server.py CCR_DOCUMENT RSA_PRIVATE_PEM

Two consumers: "rxsync-oracle-hmac" (secret "oracle-hmac-consumer-secret",
HMAC-SHA1 / HMAC-SHA256) and "rxsync-oracle-rsa" (RSA-SHA1, the public half
of RSA_PRIVATE_PEM). Prints "PORT <n>" on stdout once listening.

  POST|GET /oauth/request_token   temporary credentials (oauth_callback required)
  GET      /oauth/authorize       approves at once for patient "oracle-p1" and
                                  redirects to the callback with oauth_token and
                                  oauth_verifier; with "deny" in the query it
                                  redirects with oauth_problem=permission_denied
  POST|GET /oauth/access_token    token credentials; "patient" beside them
  GET      /ccr/<patient>         CCR_DOCUMENT, for a valid access token of that patient
  GET      /profile               the token's patient as JSON (id, patient.mrn "MRN-ORACLE-1",
                                  family_name, birth_date), for a valid access token
  GET      /_record               what happened (never a token or a secret)
"""
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

from cryptography.hazmat.primitives import serialization
from oauthlib.oauth1 import (
    AccessTokenEndpoint,
    AuthorizationEndpoint,
    RequestTokenEndpoint,
    RequestValidator,
    ResourceEndpoint,
)
from oauthlib.oauth1.rfc5849 import errors

PATIENT = "oracle-p1"
PROFILE = {"patient": {"mrn": "MRN-ORACLE-1"}, "family_name": "Oracle", "birth_date": "1970-01-01"}
REALMS = ["ccr"]
HMAC_KEY = "rxsync-oracle-hmac"
HMAC_SECRET = "oracle-hmac-consumer-secret"
RSA_KEY = "rxsync-oracle-rsa"

LOCK = threading.Lock()
CONSUMERS = {}           # key -> {"secret": str|None, "rsa": PEM|None}
REQUEST_TOKENS = {}      # token -> {"client": key, "secret", "callback", "verifier", "patient"}
ACCESS_TOKENS = {}       # token -> {"client": key, "secret", "patient"}
NONCES = set()
RECORD = {"request_tokens": 0, "authorized": 0, "denied": 0, "access_tokens": 0,
          "resources_ok": 0, "profiles_ok": 0, "refused": [], "signature_types": [], "methods": []}


class Validator(RequestValidator):
    """The whole provider's state, as oauthlib asks for it.

    oauthlib's default format checks want keys, tokens and nonces of 20-30
    characters from a small alphabet; rxsync's nonces are 32 alphanumerics,
    so the checks here ask only for a non-empty printable value. Everything
    else (signatures, timestamps, placement, realms, verifier) is oauthlib's.
    """

    enforce_ssl = False

    @property
    def allowed_signature_methods(self):
        return ("HMAC-SHA1", "HMAC-SHA256", "RSA-SHA1")

    def _ok(self, value):
        return bool(value) and value.isprintable() and len(value) <= 128

    check_client_key = _ok
    check_request_token = _ok
    check_access_token = _ok
    check_nonce = _ok
    check_verifier = _ok

    def check_realms(self, realms):
        return all(r in REALMS for r in realms)

    @property
    def dummy_client(self):
        return "dummy-client"

    @property
    def dummy_request_token(self):
        return "dummy-request-token"

    @property
    def dummy_access_token(self):
        return "dummy-access-token"

    def validate_client_key(self, client_key, request):
        return client_key in CONSUMERS

    def get_client_secret(self, client_key, request):
        c = CONSUMERS.get(client_key)
        return (c and c["secret"]) or "dummy-secret"

    def get_rsa_key(self, client_key, request):
        c = CONSUMERS.get(client_key)
        return (c and c["rsa"]) or CONSUMERS[RSA_KEY]["rsa"]

    def get_default_realms(self, client_key, request):
        return list(REALMS)

    def validate_requested_realms(self, client_key, realms, request):
        return all(r in REALMS for r in realms)

    def validate_redirect_uri(self, client_key, redirect_uri, request):
        u = urlparse(redirect_uri)
        return u.scheme == "http" and u.hostname == "127.0.0.1"

    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request,
                                     request_token=None, access_token=None):
        key = (client_key, timestamp, nonce, request_token, access_token)
        with LOCK:
            if key in NONCES:
                return False
            NONCES.add(key)
            RECORD["methods"].append(request.signature_method)
        return True

    def save_request_token(self, token, request):
        with LOCK:
            REQUEST_TOKENS[token["oauth_token"]] = {
                "client": request.client_key,
                "secret": token["oauth_token_secret"],
                "callback": request.redirect_uri,
                "verifier": None,
                "patient": None,
            }
            RECORD["request_tokens"] += 1

    def verify_request_token(self, token, request):
        return token in REQUEST_TOKENS

    def get_realms(self, token, request):
        return list(REALMS)

    def verify_realms(self, token, realms, request):
        return all(r in REALMS for r in realms)

    def get_redirect_uri(self, token, request):
        return REQUEST_TOKENS[token]["callback"]

    def save_verifier(self, token, verifier, request):
        with LOCK:
            t = REQUEST_TOKENS[token]
            t["verifier"] = verifier["oauth_verifier"]
            t["patient"] = PATIENT
            RECORD["authorized"] += 1

    def validate_request_token(self, client_key, token, request):
        t = REQUEST_TOKENS.get(token)
        return bool(t) and t["client"] == client_key

    def get_request_token_secret(self, client_key, token, request):
        t = REQUEST_TOKENS.get(token)
        return t["secret"] if t and t["client"] == client_key else "dummy-secret"

    def validate_verifier(self, client_key, token, verifier, request):
        t = REQUEST_TOKENS.get(token)
        if not t or t["verifier"] is None or t["verifier"] != verifier:
            return False
        request.patient = t["patient"]
        return True

    def invalidate_request_token(self, client_key, request_token, request):
        with LOCK:
            REQUEST_TOKENS.pop(request_token, None)

    def save_access_token(self, token, request):
        with LOCK:
            ACCESS_TOKENS[token["oauth_token"]] = {
                "client": request.client_key,
                "secret": token["oauth_token_secret"],
                "patient": request.patient,
            }
            RECORD["access_tokens"] += 1

    def validate_access_token(self, client_key, token, request):
        t = ACCESS_TOKENS.get(token)
        return bool(t) and t["client"] == client_key

    def get_access_token_secret(self, client_key, token, request):
        t = ACCESS_TOKENS.get(token)
        return t["secret"] if t and t["client"] == client_key else "dummy-secret"

    def validate_realms(self, client_key, token, request, uri=None, realms=None):
        return all(r in REALMS for r in (realms or []))


VALIDATOR = Validator()
REQUEST = RequestTokenEndpoint(VALIDATOR)
AUTHORIZE = AuthorizationEndpoint(VALIDATOR)
ACCESS = AccessTokenEndpoint(VALIDATOR)
RESOURCE = ResourceEndpoint(VALIDATOR)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, status, headers, body):
        body = body.encode() if isinstance(body, str) else (body or b"")
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _request(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        uri = "http://%s%s" % (self.headers.get("Host"), self.path)
        headers = {k: v for k, v in self.headers.items()}
        return uri, self.command, body.decode() or None, headers

    def _refused(self, what, status):
        with LOCK:
            RECORD["refused"].append("%s %s" % (what, status))

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def _dispatch(self):
        path = urlparse(self.path).path
        uri, method, body, headers = self._request()
        if path == "/_record":
            import json
            with LOCK:
                return self._answer(200, {"Content-Type": "application/json"}, json.dumps(RECORD))
        if path in ("/oauth/request_token", "/oauth/access_token") or path.startswith("/ccr/"):
            header = (self.headers.get("Authorization") or "").lower().startswith("oauth ")
            query = any(k.startswith("oauth_") for k, _ in parse_qsl(urlparse(uri).query))
            placement = {(True, False): "AUTH_HEADER", (False, True): "QUERY"}.get((header, query), "BOTH_OR_NONE")
            with LOCK:
                RECORD["signature_types"].append(placement)
        if path == "/oauth/request_token":
            h, b, s = REQUEST.create_request_token_response(uri, method, body, headers)
            if s != 200:
                self._refused("request_token", s)
            return self._answer(s, h, b)
        if path == "/oauth/authorize" and method == "GET":
            return self._authorize(uri, headers)
        if path == "/oauth/access_token":
            h, b, s = ACCESS.create_access_token_response(
                uri, method, body, headers, credentials={"patient": PATIENT})
            if s != 200:
                self._refused("access_token", s)
            return self._answer(s, h, b)
        if path.startswith("/ccr/") and method == "GET":
            valid, request = RESOURCE.validate_protected_resource_request(
                uri, method, body, headers, realms=REALMS)
            token = ACCESS_TOKENS.get(getattr(request, "resource_owner_key", None) or "")
            if not valid or not token:
                self._refused("resource", 401)
                return self._answer(401, {"WWW-Authenticate": 'OAuth realm="ccr"'}, "")
            if path != "/ccr/" + token["patient"]:
                self._refused("resource", 403)
                return self._answer(403, {}, "this token is for another patient\n")
            with LOCK:
                RECORD["resources_ok"] += 1
            return self._answer(200, {"Content-Type": "application/xml"}, DOCUMENT)
        if path == "/profile" and method == "GET":
            valid, request = RESOURCE.validate_protected_resource_request(
                uri, method, body, headers, realms=REALMS)
            token = ACCESS_TOKENS.get(getattr(request, "resource_owner_key", None) or "")
            if not valid or not token:
                self._refused("profile", 401)
                return self._answer(401, {"WWW-Authenticate": 'OAuth realm="ccr"'}, "")
            import json
            with LOCK:
                RECORD["profiles_ok"] += 1
            answer = dict(PROFILE, id=token["patient"])
            return self._answer(200, {"Content-Type": "application/json"}, json.dumps(answer))
        return self._answer(404, {}, "")

    def _authorize(self, uri, headers):
        query = dict(parse_qsl(urlparse(uri).query, keep_blank_values=True))
        token = query.get("oauth_token", "")
        if "deny" in query:
            pending = REQUEST_TOKENS.pop(token, None)
            if not pending:
                return self._answer(400, {}, "unknown request token\n")
            with LOCK:
                RECORD["denied"] += 1
            u = urlparse(pending["callback"])
            q = parse_qsl(u.query) + [("oauth_token", token), ("oauth_problem", "permission_denied")]
            return self._answer(302, {"Location": urlunparse(u._replace(query=urlencode(q)))}, "")
        try:
            realms, credentials = AUTHORIZE.get_realms_and_credentials(uri, "GET", None, headers)
            h, b, s = AUTHORIZE.create_authorization_response(
                uri, "GET", None, headers, realms, credentials)
        except errors.OAuth1Error as e:
            self._refused("authorize", e.status_code)
            return self._answer(e.status_code, {}, e.urlencoded)
        return self._answer(s, h, b)


def main():
    global DOCUMENT
    DOCUMENT = open(sys.argv[1], "rb").read()
    private = serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), password=None)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    CONSUMERS[HMAC_KEY] = {"secret": HMAC_SECRET, "rsa": None}
    CONSUMERS[RSA_KEY] = {"secret": None, "rsa": public}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
