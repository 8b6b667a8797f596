"""Every request field the spec declares is a field the simulator knows, and only those are.

For each endpoint, and for every property of its request schema (top level and inside `options`),
send a request that carries that property (value: the spec's example, else one built from the schema)
and check the answer is not INVALID_REQUEST/UNKNOWN_FIELDS; then send a made-up field and check that
it is. Tokens are unknown ones, so nothing changes in the simulated world (the answer is mostly
INVALID_ACCESS_TOKEN, which comes after the field check). The exchanges this records are validated
against the spec like all others.

Environment: PLAID_SIM_URL, PLAID_CLIENT_ID, PLAID_SECRET. usage: probe_fields.py --spec SPEC ENDPOINT...
"""

import argparse
import datetime
import json
import os
import sys
import urllib.error
import urllib.request

from validate_exchanges import REF_PREFIX, load_spec

URL = os.environ["PLAID_SIM_URL"].rstrip("/")
HEADERS = {"Content-Type": "application/json", "PLAID-CLIENT-ID": os.environ["PLAID_CLIENT_ID"],
           "PLAID-SECRET": os.environ["PLAID_SECRET"], "Plaid-Version": "2020-09-14"}
UNKNOWN_TOKEN = "access-sandbox-00000000-0000-0000-0000-000000000000"
# The smallest request each endpoint needs before optional fields are added.
BASE = {
    "/link/token/create": {"client_name": "banksync", "language": "en", "country_codes": ["US"],
                           "user": {"client_user_id": "probe"}, "products": ["transactions"]},
    "/item/public_token/exchange": {"public_token": "public-sandbox-00000000-0000-0000-0000-000000000000"},
    "/webhook_verification_key/get": {"key_id": "00000000-0000-0000-0000-000000000000"},
    "/sandbox/public_token/create": {"institution_id": "ins_109508", "initial_products": ["transactions"]},
    "/sandbox/item/fire_webhook": {"access_token": UNKNOWN_TOKEN, "webhook_code": "SYNC_UPDATES_AVAILABLE"},
}
# access_token on /link/token/create switches to update mode: keep it unknown, as everywhere. The spec's
# example webhook URLs are real hosts: point them at a closed loopback port (nothing leaves the machine).
OVERRIDES = {"access_token": UNKNOWN_TOKEN, "webhook": "http://127.0.0.1:9/probe"}


def post(path, body):
    request = urllib.request.Request(URL + path, data=json.dumps(body, default=str).encode(), headers=HEADERS)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def jsonable(value):
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


class Samples:
    def __init__(self, spec):
        self.schemas = spec["components"]["schemas"]

    def deref(self, schema):
        while isinstance(schema, dict) and "$ref" in schema:
            schema = self.schemas[schema["$ref"][len(REF_PREFIX):]]
        return schema

    def properties(self, schema):
        schema = self.deref(schema)
        props = dict(schema.get("properties") or {})
        for part in schema.get("allOf") or []:
            props.update(self.properties(part))
        return props

    def value(self, schema, depth=0):
        schema = self.deref(schema)
        if "example" in schema:
            return jsonable(schema["example"])
        if schema.get("enum"):
            return next((v for v in schema["enum"] if v is not None), None)
        for keyword in ("allOf", "oneOf", "anyOf"):
            if schema.get(keyword):
                return self.value(schema[keyword][0], depth + 1)
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            required = schema.get("required") or []
            return {k: self.value(v, depth + 1) for k, v in self.properties(schema).items()
                    if k in required and depth < 4}
        if kind == "array":
            return [self.value(schema.get("items") or {}, depth + 1)] if schema.get("minItems") else []
        if kind == "integer":
            return schema.get("minimum", 1)
        if kind == "number":
            return 1.0
        if kind == "boolean":
            return False
        return {"date": "2025-01-01", "date-time": "2025-01-01T00:00:00Z"}.get(schema.get("format"), "probe")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True)
    parser.add_argument("endpoints", nargs="+")
    args = parser.parse_args()
    spec = load_spec(args.spec)
    samples = Samples(spec)
    failures, probed = [], 0

    for path in args.endpoints:
        schema = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        base = BASE.get(path, {"access_token": UNKNOWN_TOKEN})
        props = samples.properties(schema)
        # (location, body) pairs: each top-level property, then each property of `options`.
        cases = []
        for name, prop in props.items():
            if name in ("client_id", "secret"):
                continue
            value = OVERRIDES.get(name, samples.value(prop))
            cases.append((name, {**base, name: value}))
        if "options" in props:
            for name, prop in samples.properties(props["options"]).items():
                value = OVERRIDES.get(name, samples.value(prop))
                cases.append((f"options.{name}", {**base, "options": {name: value}}))
        for location, body in cases:
            probed += 1
            status, answer = post(path, body)
            if answer.get("error_code") == "UNKNOWN_FIELDS":
                failures.append(f"{path}: the spec declares `{location}`, the sim calls it unknown: "
                                f"{answer.get('error_message')}")
        status, answer = post(path, {**base, "not_a_plaid_field": 1})
        probed += 1
        if answer.get("error_code") != "UNKNOWN_FIELDS":
            failures.append(f"{path}: an undeclared field should be INVALID_REQUEST/UNKNOWN_FIELDS like Plaid, "
                            f"got HTTP {status} {answer.get('error_code')}")

    print(f"probed {probed} requests with every declared request field of {len(args.endpoints)} endpoints")
    for failure in failures:
        print(f"  FAIL {failure}")
    if failures:
        return 1
    print("every declared field is known, undeclared ones are refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
