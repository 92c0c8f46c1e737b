#!/usr/bin/env python3
"""Independent check of the sandbox provider's OAuth 1.0a verifier.

Reads one JSON document on stdin, written by tests/it/sandbox/oracle.rs:

    {"base": "http://127.0.0.1:PORT", "patient": "...",
     "rsa_key_file": "samples/sandbox/demo-rsa-key.pem",
     "consumers": [{"key", "secret" (or null for RSA), "token", "token_secret",
                    "placements": ["header", "query"], "methods": ["HMAC-SHA1", ...]}]}

For every consumer, placement, signature method, path and tricky query
(unicode, spaces as `+` and `%20`, `+` itself, `~`, `*`, repeated and bare
parameters), it signs a GET with Python's oauthlib (never with rxsync's
code) and sends it to the running sandbox with urllib: first a tampered
copy (one character of the signature changed, or the query changed after
signing), which must be refused with 401 `oauth_problem=signature_invalid`,
then the request itself, which must be answered 200. The tampered copy goes
first because it shares the nonce: a refused request must not burn it.

Writes one JSON document on stdout: {"total", "passed", "failures": [...]}.
Exits 3 when oauthlib (with PyJWT and cryptography for RSA-SHA1) is missing.
"""
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

try:
    from oauthlib.oauth1 import (
        SIGNATURE_TYPE_AUTH_HEADER,
        SIGNATURE_TYPE_QUERY,
        Client,
    )
    import jwt  # noqa: F401  (oauthlib's RSA-SHA1 needs PyJWT + cryptography)
    import cryptography  # noqa: F401
except ImportError as exc:  # pragma: no cover - reported to the Rust test
    sys.stderr.write(
        "oauthlib is not importable (%s): pip install 'oauthlib[signedtoken]==4.0.1'\n" % exc
    )
    sys.exit(3)

# Raw query strings as a client might send them (already percent-encoded:
# urllib sends the URL as given).
QUERIES = [
    "",
    "q=caf%C3%A9",
    "q=a+b",
    "q=a%20b",
    "q=%2B1",
    "q=1%2B1%3D2",
    "t=~tilde&s=*star",
    "s=%2Astar&t=%7Etilde",
    "r=2&r=1&r=2",
    "flag&e=",
    "x=%E4%B8%AD%F0%9F%92%8A",
    "amp=a%26b&eq=a%3Db&slash=a/b",
    "sp=%20lead%20and%20trail%20",
    "name%20with%20space=v",
    "mixed=%c3%bc%c3%9f",
    "z=1&a=2&m=%21%27%28%29",
]


def paths(patient):
    return ["/ccr/" + patient, "/fhir/MedicationRequest?patient=" + patient]


def join(path, query):
    if not query:
        return path
    return path + ("&" if "?" in path else "?") + query


def send(url, headers):
    request = urllib.request.Request(url, headers=headers, method="GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")


def flip(text, start):
    """Changes one base64 character at `start`."""
    ch = text[start]
    return text[:start] + ("B" if ch == "A" else "A") + text[start + 1:]


def tamper(uri, headers, placement):
    """A copy whose signature no longer matches."""
    if placement == "header":
        auth = headers["Authorization"]
        at = auth.index('oauth_signature="') + len('oauth_signature="')
        return uri, dict(headers, Authorization=flip(auth, at))
    # The query changed after signing: one more parameter.
    return uri + "&tampered=1", headers


def problem(body):
    pairs = urllib.parse.parse_qs(body, keep_blank_values=True)
    return pairs.get("oauth_problem", [""])[0]


def main():
    doc = json.load(sys.stdin)
    with open(doc["rsa_key_file"]) as f:
        rsa_key = f.read()
    results = []
    case_id = 0
    for consumer in doc["consumers"]:
        for placement in consumer["placements"]:
            for method in consumer["methods"]:
                for path in paths(doc["patient"]):
                    for query in QUERIES:
                        case_id += 1
                        url = doc["base"] + join(path, query)
                        realm = "sandbox" if placement == "header" and case_id % 3 == 0 else None
                        client = Client(
                            consumer["key"],
                            client_secret=consumer.get("secret"),
                            resource_owner_key=consumer["token"],
                            resource_owner_secret=consumer["token_secret"],
                            signature_method=method,
                            signature_type=(SIGNATURE_TYPE_AUTH_HEADER if placement == "header"
                                            else SIGNATURE_TYPE_QUERY),
                            rsa_key=rsa_key if method == "RSA-SHA1" else None,
                            realm=realm,
                        )
                        case = {"id": case_id, "consumer": consumer["key"], "placement": placement,
                                "method": method, "url": url}
                        try:
                            uri, headers, _ = client.sign(url, http_method="GET")
                            bad_uri, bad_headers = tamper(uri, headers, placement)
                            bad_status, bad_body = send(bad_uri, bad_headers)
                            status, body = send(uri, headers)
                        except Exception as exc:  # noqa: BLE001 - reported, not hidden
                            case.update(ok=False, error=repr(exc))
                            results.append(case)
                            continue
                        ok = (status == 200 and bad_status == 401
                              and problem(bad_body) == "signature_invalid")
                        case.update(ok=ok, status=status, tampered_status=bad_status,
                                    tampered_problem=problem(bad_body))
                        if status != 200:
                            case["body"] = body[:300]
                        results.append(case)
    failures = [r for r in results if not r["ok"]]
    json.dump({"total": len(results), "passed": len(results) - len(failures),
               "failures": failures}, sys.stdout)


if __name__ == "__main__":
    main()
