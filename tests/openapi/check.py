"""Checks Cairn's OpenAPI document and real answers against it.

    check.py SPEC.json EXCHANGES.json

1. SPEC is a valid OpenAPI 3.1 document (openapi-spec-validator).
2. Every recorded exchange (method, path, query, status, content type, headers, body) is an
   answer the document describes: the operation exists, the status is documented, the body
   matches the schema (openapi-core's response validator).
3. Every operation of the document was exercised at least once (except those named in
   EXCHANGES' "unrecorded", with the reason).

Prints one line per problem and a summary; exits 1 if anything failed.
"""

import json
import sys

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

HOST = "http://localhost"


def main(spec_path, exchanges_path):
    spec_dict, _ = read_from_filename(spec_path)
    problems = []
    try:
        validate(spec_dict)
    except Exception as e:  # the validator's own exception types
        problems.append(f"the document is not valid OpenAPI: {e}")
    if spec_dict.get("openapi", "").split(".")[:2] != ["3", "1"]:
        problems.append(f"openapi is {spec_dict.get('openapi')!r}, not 3.1")
    api = OpenAPI.from_dict(spec_dict)
    recorded = json.load(open(exchanges_path))
    exercised = set()
    for ex in recorded["exchanges"]:
        body = bytes.fromhex(ex["body"])
        request = MockRequest(HOST, ex["method"].lower(), ex["path"], args=ex.get("query") or {})
        response = MockResponse(
            body,
            status_code=ex["status"],
            headers=ex.get("headers") or {},
            content_type=ex.get("content_type") or "",
        )
        label = f'{ex["method"]} {ex["path"]} -> {ex["status"]}'
        try:
            result = api.unmarshal_response(request, response)
            if result.errors:
                problems.append(f"{label}: {result.errors}")
        except Exception as e:
            problems.append(f"{label}: {type(e).__name__}: {e}")
        exercised.add((ex["method"].lower(), ex["template"]))
    unrecorded = {(m.lower(), p) for m, p, _ in recorded.get("unrecorded", [])}
    for path, item in spec_dict["paths"].items():
        for method in ("get", "put", "post", "delete", "patch"):
            if method in item and (method, path) not in exercised | unrecorded:
                problems.append(f"{method.upper()} {path} is documented but was not exercised")
    for method, template in sorted(exercised):
        if template not in spec_dict["paths"] or method not in spec_dict["paths"][template]:
            problems.append(f"{method.upper()} {template} answered but is not documented")
    for problem in problems:
        print(problem)
    print(f"{len(recorded['exchanges'])} answers checked against {len(spec_dict['paths'])} "
          f"documented paths: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
