"""Validates a FHIR R4 Bundle read from stdin with an independent model.

The model is the Python package fhir.resources 6.4.0, the last release whose
top-level package is FHIR R4 (4.0.1): from 6.5.0 the top level is R4B and
from 7.0.0 R5, with R4B as a sub-package, and no later release carries R4
itself. 6.4.0 declares `pydantic[email]>=1.7.2` without an upper bound but
needs pydantic 1, so install it as

    python3 -m pip install 'fhir.resources==6.4.0' 'pydantic[email]>=1.10,<2'

Parsing checks every element's name, cardinality and type, nested entries
included. The model does not check required value-set bindings or
references, so this script also checks what rxsync's export promises: the
required codes of MedicationStatement.status, DetectedIssue.status and
severity, Bundle.type, unique fullUrls, and that every `urn:uuid:`
reference resolves to an entry of the bundle.

Exit 0 with a JSON summary (resources per type) on stdout; exit 1 with the
error on stderr. Used by tests/it/fhir_out.rs.
"""

import json
import sys

REQUIRED_CODES = {
    ("MedicationStatement", "status"): {
        "active", "completed", "entered-in-error", "intended",
        "stopped", "on-hold", "unknown", "not-taken",
    },
    ("DetectedIssue", "status"): {
        "registered", "preliminary", "final", "amended", "corrected",
        "cancelled", "entered-in-error", "unknown",
    },
    ("DetectedIssue", "severity"): {"high", "moderate", "low"},
    ("DocumentReference", "status"): {"current", "superseded", "entered-in-error"},
}


def fail(message):
    print(f"fhir_validate: {message}", file=sys.stderr)
    sys.exit(1)


def references(value, path="$"):
    """Every Reference.reference string under value, with its path."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "reference" and isinstance(inner, str):
                yield path, inner
            else:
                yield from references(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from references(inner, f"{path}[{i}]")


def main():
    try:
        import fhir.resources
        from fhir.resources.bundle import Bundle
    except ImportError as e:
        fail(f"cannot import fhir.resources ({e}): install 'fhir.resources==6.4.0' 'pydantic[email]>=1.10,<2'")
    version = getattr(fhir.resources, "__fhir_version__", "?")
    if not version.startswith("4.0."):
        fail(f"fhir.resources models FHIR {version}, not R4 (4.0.x): install fhir.resources==6.4.0")

    raw = sys.stdin.read()
    try:
        data = json.loads(raw)
    except ValueError as e:
        fail(f"stdin is not JSON: {e}")
    try:
        bundle = Bundle.parse_obj(data)
    except Exception as e:  # pydantic's ValidationError, with every path that failed
        fail(f"not a valid FHIR R4 Bundle: {e}")

    if bundle.type != "collection":
        fail(f"Bundle.type is {bundle.type!r}, expected 'collection'")
    if not bundle.id or not bundle.timestamp:
        fail("Bundle.id and Bundle.timestamp are required by rxsync's export")

    urls = set()
    counts = {}
    for i, entry in enumerate(data.get("entry", [])):
        url = entry.get("fullUrl")
        if not url:
            fail(f"entry[{i}] has no fullUrl")
        if url in urls:
            fail(f"entry[{i}] repeats fullUrl {url}")
        urls.add(url)
        resource = entry.get("resource", {})
        kind = resource.get("resourceType")
        counts[kind] = counts.get(kind, 0) + 1
        for (rtype, field), allowed in REQUIRED_CODES.items():
            if kind == rtype and field in resource and resource[field] not in allowed:
                fail(f"entry[{i}] {kind}.{field} = {resource[field]!r} is not one of {sorted(allowed)}")
    for path, ref in references(data):
        if ref.startswith("urn:uuid:") and ref not in urls:
            fail(f"{path} points at {ref}, which no entry of the bundle is")

    print(json.dumps({"fhir_version": version, "resources": counts}, sort_keys=True))


if __name__ == "__main__":
    main()
