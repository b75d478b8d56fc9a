#!/usr/bin/env python3
"""Parses a Prometheus text exposition from stdin with prometheus_client's own parser (an
implementation independent of the exporter under test) and prints one JSON object:
{"families": {NAME: TYPE}, "samples": [{"name", "labels", "value"}]}.
A malformed exposition makes the parser raise: exit status 1 with the reason on stderr."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    families = {}
    samples = []
    try:
        for family in text_string_to_metric_families(text):
            families[family.name] = family.type
            for sample in family.samples:
                samples.append({"name": sample.name, "labels": dict(sample.labels), "value": sample.value})
    except Exception as error:  # the parser's own complaint, for the test's failure message
        print(f"not a valid exposition: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"families": families, "samples": samples}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
