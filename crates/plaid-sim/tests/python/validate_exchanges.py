"""Validate recorded simulator exchanges against Plaid's OpenAPI spec (OpenAPI 3.0, `nullable` aware).

Input: a JSON file holding GET /sim/exchanges, i.e. [{"method","path","request","status","response"}].
For each exchange:
  - the response body must validate against the path's 200 schema for 2xx, and against its `default`
    response (PlaidError) otherwise, read-side rules (OAS30ReadValidator);
  - every response carries a string request_id, and error statuses agree with the error class
    (RATE_LIMIT_EXCEEDED is 429, API_ERROR is 5xx, the caller's mistakes are 4xx);
  - the request body we sent is checked against the request schema (write-side rules): a request the
    spec rejects must not have been answered with 2xx.
Fields the sim sends that the schema does not declare are listed as warnings (the spec allows them).
--require-paths p1,p2: each listed path must have at least one 2xx and one error exchange.
--webhooks FILE: a JSON list of delivered webhook bodies; each must validate against the spec's schema
for its webhook_type/webhook_code (found through the schemas' `webhook_type`/`webhook_code` descriptions).

Exit status 0 when everything validates, 1 otherwise; every failure is printed with its location.
"""

import argparse
import hashlib
import json
import os
import pickle
import re
import sys
from collections import OrderedDict, defaultdict

import yaml
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker

REF_PREFIX = "#/components/schemas/"


def load_spec(path):
    """Parse the 3 MB spec once; later runs read a pickle kept in the venv (keyed on the file)."""
    stat = os.stat(path)
    key = hashlib.sha256(f"{os.path.realpath(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    cache = os.path.join(sys.prefix, f"plaid-openapi-{key}.pickle")
    try:
        with open(cache, "rb") as f:
            return pickle.load(f)
    except (OSError, pickle.PickleError, EOFError):
        pass
    with open(path, "rb") as f:
        spec = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    try:
        tmp = f"{cache}.{os.getpid()}"
        with open(tmp, "wb") as f:
            pickle.dump(spec, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only venv only costs a second per run
    return spec


class Spec:
    def __init__(self, spec):
        self.spec = spec
        self._validators = {}

    def operation(self, path):
        return (self.spec.get("paths", {}).get(path) or {}).get("post")

    def deref(self, schema):
        while isinstance(schema, dict) and "$ref" in schema:
            schema = self.spec["components"]["schemas"][schema["$ref"][len(REF_PREFIX):]]
        return schema

    def validator(self, schema, cls):
        """A validator whose root document is the whole spec, so "#/components/..." refs resolve."""
        key = (json.dumps(schema, sort_keys=True, default=str), cls.__name__)
        if key not in self._validators:
            root = dict(self.spec)
            root.update(schema)
            self._validators[key] = cls(root, format_checker=oas30_format_checker)
        return self._validators[key]

    def undeclared_fields(self, schema, instance, location, out):
        """Collect object keys that no `properties` of the schema (through refs/allOf/oneOf/anyOf) declare."""
        schema = self.deref(schema)
        if not isinstance(schema, dict) or instance is None:
            return
        if isinstance(instance, list):
            items = schema.get("items")
            if items is not None:
                for element in instance:
                    self.undeclared_fields(items, element, location + "[*]", out)
            return
        if not isinstance(instance, dict):
            return
        properties, open_map = {}, False
        for part in self._parts(schema):
            properties.update(part.get("properties") or {})
            if isinstance(part.get("additionalProperties"), dict):
                open_map = True  # a map type: any key is declared
        if open_map or not properties:
            return
        for key, value in instance.items():
            if key in properties:
                self.undeclared_fields(properties[key], value, f"{location}.{key}", out)
            else:
                out.add(f"{location}.{key}")

    def webhook_schemas(self):
        """(webhook_type, webhook_code) -> schema name. The spec names them in each webhook schema's
        property descriptions (e.g. webhook_code: "`SYNC_UPDATES_AVAILABLE`"); Processor* twins lose."""
        index = {}
        for name, schema in sorted(self.spec["components"]["schemas"].items(), key=lambda kv: kv[0].startswith("Processor")):
            props = schema.get("properties") or {}
            if "webhook_type" not in props or "webhook_code" not in props:
                continue
            for webhook_type in re.findall(r"`([A-Z_]+)`", props["webhook_type"].get("description") or ""):
                for code in re.findall(r"`([A-Z_]+)`", props["webhook_code"].get("description") or ""):
                    index.setdefault((webhook_type, code), name)
        return index

    def _parts(self, schema):
        schema = self.deref(schema)
        yield schema
        for keyword in ("allOf", "oneOf", "anyOf"):
            for sub in schema.get(keyword) or []:
                yield from self._parts(sub)


def json_schema_of(content_holder):
    return ((content_holder or {}).get("content") or {}).get("application/json", {}).get("schema")


def describe(error):
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    message = error.message if len(error.message) <= 300 else error.message[:300] + "…"
    detail = f"{where}: {message} (schema: {'/'.join(str(p) for p in error.absolute_schema_path)})"
    # For oneOf/anyOf, the innermost reasons are what helps.
    if error.context:
        best = sorted(error.context, key=lambda e: -len(e.absolute_path))[:3]
        detail += "".join(f"\n          because {describe(sub)}" for sub in best)
    return detail


def group_key(error):
    normalized = re.sub(r"\[\d+\]", "[*]", "".join(
        f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path))
    # A missing property is named in the message only; other messages quote the (varying) instance.
    detail = error.message if error.validator == "required" else ""
    return (normalized, error.validator, json.dumps(error.validator_value, default=str)[:200], detail)


def status_consistency(status, body):
    """Plaid's documented mapping between error class and HTTP status (plaid-api.md §0, §4)."""
    error_type = body.get("error_type") if isinstance(body, dict) else None
    if (error_type == "RATE_LIMIT_EXCEEDED") != (status == 429):
        return f"HTTP 429 goes with error_type RATE_LIMIT_EXCEEDED and only with it, got {error_type} and {status}"
    if error_type == "API_ERROR" and status < 500:
        return f"error_type API_ERROR is a Plaid-side error (5xx), got {status}"
    if error_type in ("INVALID_REQUEST", "INVALID_INPUT", "ITEM_ERROR", "TRANSACTIONS_ERROR") and \
            not 400 <= status < 500:
        return f"error_type {error_type} is the caller's or the user's error (4xx), got {status}"
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True)
    parser.add_argument("--exchanges", required=True)
    parser.add_argument("--require-paths", default="")
    parser.add_argument("--webhooks")
    args = parser.parse_args()

    spec = Spec(load_spec(args.spec))
    with open(args.exchanges) as f:
        exchanges = json.load(f)

    failures = OrderedDict()  # (path, kind, key) -> [count, first message]
    warnings = defaultdict(set)  # path -> undeclared field locations
    coverage = defaultdict(lambda: {"ok": 0, "error": 0, "codes": set()})
    refused_invalid_requests = 0

    def fail(path, kind, key, message):
        entry = failures.setdefault((path, kind, key), [0, message])
        entry[0] += 1

    for index, exchange in enumerate(exchanges):
        path, status = exchange["path"], exchange["status"]
        request, response = exchange.get("request"), exchange.get("response")
        label = f"#{index} {exchange.get('method', 'POST')} {path} -> {status}"
        operation = spec.operation(path)
        if exchange.get("method", "POST") != "POST" or operation is None:
            fail(path, "path", None, f"{label}: no POST {path} in the spec")
            continue
        success = 200 <= status < 300
        if success:
            coverage[path]["ok"] += 1
        else:
            coverage[path]["error"] += 1
            if isinstance(response, dict):
                coverage[path]["codes"].add(f"{response.get('error_code')}")

        # Response body against the spec.
        responses = operation.get("responses", {})
        declared = responses.get(str(status)) or (responses.get("200") if success else responses.get("default"))
        schema = json_schema_of(declared)
        if schema is None:
            fail(path, "response", status, f"{label}: the spec declares no JSON response for HTTP {status}")
        else:
            for error in spec.validator(schema, OAS30ReadValidator).iter_errors(response):
                fail(path, "response", group_key(error), f"{label}: response {describe(error)}")
            spec.undeclared_fields(schema, response, "$", warnings[path])
        if not (isinstance(response, dict) and isinstance(response.get("request_id"), str)
                and response["request_id"]):
            fail(path, "request_id", None, f"{label}: response has no request_id string (Plaid always sends one)")
        if not success:
            problem = status_consistency(status, response)
            if problem:
                fail(path, "status", problem, f"{label}: {problem}")

        # Request body against the spec: the sim must refuse what the spec forbids.
        request_schema = json_schema_of(operation.get("requestBody"))
        if request_schema is not None:
            errors = list(spec.validator(request_schema, OAS30WriteValidator).iter_errors(request))
            if errors and success:
                fail(path, "accepted-invalid-request", group_key(errors[0]),
                     f"{label}: answered 2xx to a request the spec rejects: {describe(errors[0])}\n"
                     f"          request: {json.dumps(request)[:400]}")
            elif errors:
                refused_invalid_requests += 1

    webhook_counts = defaultdict(int)
    if args.webhooks:
        with open(args.webhooks) as f:
            webhooks = json.load(f)
        index = spec.webhook_schemas()
        for number, body in enumerate(webhooks):
            kind = (body.get("webhook_type"), body.get("webhook_code"))
            label = f"webhook #{number} {kind[0]}/{kind[1]}"
            name = index.get(kind)
            if name is None:
                fail("webhook", "webhook", kind, f"{label}: the spec has no webhook schema for it")
                continue
            webhook_counts[f"{kind[0]}/{kind[1]} ({name})"] += 1
            schema = {"$ref": REF_PREFIX + name}
            for error in spec.validator(schema, OAS30ReadValidator).iter_errors(body):
                fail("webhook", name, group_key(error), f"{label}: {name} {describe(error)}")
            spec.undeclared_fields(schema, body, "$", warnings[f"webhook {name}"])

    required = [p for p in args.require_paths.split(",") if p]
    for path in required:
        if coverage[path]["ok"] == 0 or coverage[path]["error"] == 0:
            fail(path, "coverage", None, f"{path}: needs a 2xx and an error exchange, has "
                 f"{coverage[path]['ok']} 2xx and {coverage[path]['error']} errors")

    print(f"validated {len(exchanges)} exchanges against {os.path.basename(args.spec)} "
          f"(info.version {spec.spec.get('info', {}).get('version')})")
    for path in sorted(coverage):
        c = coverage[path]
        print(f"  {path:34} {c['ok']:5} ok {c['error']:4} errors  {' '.join(sorted(c['codes']))}")
    print(f"  {refused_invalid_requests} spec-invalid requests were refused with an error, as they should be")
    for kind in sorted(webhook_counts):
        print(f"  webhook {kind:70} {webhook_counts[kind]:3} delivered")
    for path in sorted(warnings):
        if warnings[path]:
            print(f"  warning: {path} sends fields its schema does not declare: {', '.join(sorted(warnings[path]))}")
    if failures:
        total = sum(count for count, _ in failures.values())
        print(f"\n{total} FAILURE(S) in {len(failures)} group(s):")
        for (path, kind, _), (count, message) in failures.items():
            more = f"  [and {count - 1} more like it]" if count > 1 else ""
            print(f"  FAIL [{kind}] {message}{more}")
        return 1
    print("all exchanges conform to the spec")
    return 0


if __name__ == "__main__":
    sys.exit(main())
