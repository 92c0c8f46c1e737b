#!/usr/bin/env python3
"""Differential oracle for rxsync's OAuth 1.0a signer and verifier.

Reads one JSON document on stdin: {"cases": [...]}, as written by
tests/it/oauth1_oracle.rs. For every case it

  (a) signs the same request with oauthlib.oauth1.Client and returns the
      decoded oauth_* parameters it sent (not the URL: oauthlib re-serializes
      the query, so strings would differ where parameters do not);
  (b) checks rxsync's signed request with an oauthlib ResourceEndpoint;
  (c) returns oauthlib's signed request so that rxsync's verifier can check it;
  (d) recomputes the signature of rxsync's request from oauthlib's signature
      primitives (base_string_uri, normalize_parameters, signature_base_string,
      sign_*_with_client), with every parameter decoded exactly once. oauthlib's
      collect_parameters() percent-decodes oauth_* values from the query a second
      time, so for those values (d) is the oracle that follows RFC 5849;
  (e) reports whether oauthlib's endpoint accepts oauthlib's own request, to tell
      an oauthlib quirk from an rxsync bug.

Writes one JSON document on stdout: {"results": [...]}, one per case, in order.
A case that makes oauthlib raise is reported with "error", never dropped.
"""
import json
import sys
import traceback
from urllib.parse import urlparse

try:
    from oauthlib.common import urldecode
    from oauthlib.oauth1 import (
        SIGNATURE_TYPE_AUTH_HEADER,
        SIGNATURE_TYPE_QUERY,
        Client,
        RequestValidator,
        ResourceEndpoint,
    )
    from oauthlib.oauth1.rfc5849 import signature, utils
    import jwt  # noqa: F401  (RSA-SHA1 in oauthlib needs PyJWT + cryptography)
except ImportError as exc:  # pragma: no cover - reported to the Rust test
    sys.stderr.write(
        "oauthlib is not importable (%s): pip install 'oauthlib[signedtoken]'\n" % exc
    )
    sys.exit(3)


class CaseValidator(RequestValidator):
    """Accepts exactly the credentials of one case.

    The default validator only allows 20-30 alphanumeric keys and nonces; the
    oracle deliberately uses unicode and punctuation in them, so the format
    checks only ask for a non-empty value. Timestamps are checked by oauthlib
    itself (10 digits, within 600 s of now). Transport security is not what
    is being compared, so http cases are allowed here.
    """

    enforce_ssl = False
    dummy_client = "dummy-client"
    dummy_access_token = "dummy-token"

    def __init__(self, case):
        super().__init__()
        self.case = case

    def check_client_key(self, client_key):
        return bool(client_key)

    def check_access_token(self, token):
        return bool(token)

    def check_nonce(self, nonce):
        return bool(nonce)

    def validate_client_key(self, client_key, request):
        return client_key == self.case["consumer_key"]

    def validate_access_token(self, client_key, token, request):
        return token == self.case["token"]

    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request,
                                     request_token=None, access_token=None):
        return True

    def validate_realms(self, client_key, token, request, uri=None, realms=None):
        return True

    def get_client_secret(self, client_key, request):
        return self.case["consumer_secret"]

    def get_access_token_secret(self, client_key, token, request):
        return self.case["token_secret"]

    def get_rsa_key(self, client_key, request):
        return self.case["rsa_public_key"]


def headers_for(case, authorization=None):
    headers = {}
    if case.get("content_type"):
        headers["Content-Type"] = case["content_type"]
    if authorization:
        headers["Authorization"] = authorization
    return headers


def oauth_params_of(uri, headers):
    """The oauth_* parameters a signed request carries, decoded once."""
    auth = headers.get("Authorization")
    if auth is not None:
        pairs = [(k, utils.unescape(v)) for k, v in utils.parse_authorization_header(auth)
                 if k != "realm"]
    else:
        pairs = urldecode(urlparse(uri).query)
    return sorted([k, v] for k, v in pairs if k.startswith("oauth_"))


def primitive_signature(case, client, uri, authorization, body):
    """(d): the signature of a signed request, from oauthlib's primitives,
    with query, header and form parameters each decoded once (§3.4.1.3.1)."""
    params = list(urldecode(urlparse(uri).query))
    if authorization:
        params += [(k, utils.unescape(v)) for k, v in utils.parse_authorization_header(authorization)
                   if k != "realm"]
    if body is not None and case.get("content_type") == "application/x-www-form-urlencoded":
        params += urldecode(body)
    params = [(k, v) for k, v in params if k != "oauth_signature"]
    base = signature.signature_base_string(
        case["http_method"], signature.base_string_uri(uri), signature.normalize_parameters(params))
    return Client.SIGNATURE_METHODS[case["signature_method"]](base, client)


def verify_with_oauthlib(case, uri, authorization):
    endpoint = ResourceEndpoint(CaseValidator(case))
    valid, request = endpoint.validate_protected_resource_request(
        uri, http_method=case["http_method"], body=case.get("body"),
        headers=headers_for(case, authorization))
    return bool(valid), repr(getattr(request, "validator_log", None))


def run_case(case):
    out = {"id": case["id"]}
    header = case["placement"] == "header"
    client = Client(
        case["consumer_key"],
        client_secret=case["consumer_secret"],
        resource_owner_key=case["token"],
        resource_owner_secret=case["token_secret"],
        signature_method=case["signature_method"],
        signature_type=SIGNATURE_TYPE_AUTH_HEADER if header else SIGNATURE_TYPE_QUERY,
        rsa_key=case.get("rsa_private_key"),
        realm=case.get("realm"),
        nonce=case["nonce"],
        timestamp=case["timestamp"],
    )
    # (a) oauthlib signs the same request.
    try:
        uri, headers, body = client.sign(
            case["raw_url"], http_method=case["http_method"], body=case.get("body"),
            headers=headers_for(case))
        out["oauthlib_params"] = oauth_params_of(uri, headers)
        # (c) handed back for rxsync's verifier.
        out["oauthlib_request"] = {
            "uri": uri,
            "authorization": headers.get("Authorization"),
            "body": body,
        }
        # (e) oauthlib on its own request.
        out["self_accepted"], _ = verify_with_oauthlib(case, uri, headers.get("Authorization"))
    except Exception:  # noqa: BLE001 - reported, not hidden
        out["sign_error"] = traceback.format_exc(limit=3)

    signed = case["rxsync"]
    # (b) oauthlib verifies rxsync's request.
    try:
        out["accepted"], out["reject_log"] = verify_with_oauthlib(
            case, signed["uri"], signed.get("authorization"))
    except Exception:  # noqa: BLE001
        out["accepted"] = False
        out["reject_log"] = traceback.format_exc(limit=3)
    # (d) the signature rebuilt from oauthlib's primitives.
    try:
        out["primitive_signature"] = primitive_signature(
            case, client, signed["uri"], signed.get("authorization"), case.get("body"))
    except Exception:  # noqa: BLE001
        out["primitive_error"] = traceback.format_exc(limit=3)
    return out


def main():
    doc = json.load(sys.stdin)
    results = [run_case(case) for case in doc["cases"]]
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    main()
