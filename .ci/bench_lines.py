"""Checks ferrotp-bench output on stdin: at least one JSON line, each a ferrotp result with a positive
value, and prints them one per line. Timings are never compared with anything."""
import json
import sys

lines = [json.loads(line) for line in sys.stdin if line.strip()]
assert lines, "no result lines"
for line in lines:
    assert line["system"].startswith("ferrotp") and line["value"] > 0, line
    print(line["system"], line["workload"], line["metric"], line["value"])
