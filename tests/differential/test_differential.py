"""Differential tests: every scenario of scenarios.py against Apache Kafka and against Strata,
step by step. A step whose results differ fails the scenario unless KNOWN.md lists its key
(`<scenario>/<step>`) with the reason; a listed key whose results no longer differ fails too,
so that KNOWN.md stays true (delete the entry when a difference is fixed).

DIFFERENTIAL_RESULTS=<file> appends every scenario's results from both brokers to <file>, one
JSON object per line, to see what was compared."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import ops
from scenarios import SCENARIOS

KNOWN_MD = Path(__file__).resolve().parent / "KNOWN.md"
# A known difference is a list item starting with its key in backquotes, "- `scenario/step`: why";
# differences with one reason may share the item: "- `a/step[x]`, `a/step[y]`: why".
KNOWN_ITEM_RE = re.compile(r"^- ((?:`[^`]+`,?\s*)+)", re.MULTILINE)
KEY_RE = re.compile(r"`([a-z0-9-]+/[a-z_]+(?:\.\d+)?(?:\[[^\]`]+\])?)`")


def known_differences() -> dict[str, list[str]]:
    """Scenario name -> the keys KNOWN.md lists for it."""
    out: dict[str, list[str]] = {}
    for item in KNOWN_ITEM_RE.findall(KNOWN_MD.read_text()):
        for key in KEY_RE.findall(item):
            out.setdefault(key.split("/")[0], []).append(key)
    return out


def test_known_keys_name_scenarios_and_steps():
    """Every KNOWN.md key names a scenario step that exists (catches typos and renamed steps)."""
    steps = {f"{name}/{label}" for name, scenario in SCENARIOS for label, _ in scenario}
    keys = [k for ks in known_differences().values() for k in ks]
    assert keys, "KNOWN.md lists no differences: is its format (- `scenario/step`: reason) intact?"
    assert sorted(k for k in keys if k.split("[")[0] not in steps) == [], "KNOWN.md keys that name no scenario step"
    assert len(keys) == len(set(keys)), "KNOWN.md lists a key twice"


def _substitute(value, names: dict[str, str]):
    if isinstance(value, str):
        for placeholder in sorted(names, key=len, reverse=True):
            value = value.replace(placeholder, names[placeholder])
        return value
    if isinstance(value, list):
        return [_substitute(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, names) for k, v in value.items()}
    return value


def run_scenario(broker, name: str, steps) -> dict[str, object]:
    broker.check_alive()
    target = ops.Target(broker.kind, broker.bootstrap)
    names = {"$t3": f"d-{name}-3", "$t2": f"d-{name}-2", "$t": f"d-{name}", "$g": f"dg-{name}"}
    results = {}
    for label, args in steps:
        fn = ops.OPS[label.split(".")[0]]
        try:
            results[label] = fn(target, **_substitute(args, names))
        except Exception as e:  # noqa: BLE001 - a failing step is a result too
            broker.check_alive()
            results[label] = f"raised {type(e).__name__}: {e}"
    return results


def _compared(name: str, steps, want: dict, got: dict):
    """(key, Kafka's value, Strata's value) of each compared item: a step's whole result, or,
    when both results of a step are dicts with the same keys, each entry on its own, keyed
    `<scenario>/<step>[<entry>]` (so that one explained difference in a described config does
    not hide another)."""
    for label, _ in steps:
        a, b = want[label], got[label]
        if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and a:
            for entry in a:
                yield f"{name}/{label}[{entry}]", a[entry], b[entry]
        else:
            yield f"{name}/{label}", a, b


def _show(v) -> str:
    return json.dumps(v, sort_keys=True, default=str)


@pytest.mark.parametrize("name,steps", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_scenario(kafka, strata, name, steps):
    want = run_scenario(kafka, name, steps)
    got = run_scenario(strata, name, steps)
    if os.environ.get("DIFFERENTIAL_RESULTS"):
        with open(os.environ["DIFFERENTIAL_RESULTS"], "a") as f:
            f.write(json.dumps({"scenario": name, "kafka": want, "strata": got}, default=str) + "\n")
    known = set(known_differences().get(name, []))
    unexplained, stale, explained = [], [], []
    for key, kafka_value, strata_value in _compared(name, steps, want, got):
        same = _show(kafka_value) == _show(strata_value)
        line = f"  {key}\n    kafka:  {_show(kafka_value)}\n    strata: {_show(strata_value)}"
        if not same and key not in known:
            unexplained.append(line)
        elif not same:
            explained.append(line)
        elif key in known:
            stale.append(f"  {key}: both answer {_show(strata_value)}")
    if explained:
        print("known differences (KNOWN.md):\n" + "\n".join(explained))
    msg = []
    if unexplained:
        msg.append("differences not in tests/differential/KNOWN.md:\n" + "\n".join(unexplained))
    if stale:
        msg.append("KNOWN.md lists differences that no longer occur (delete the entries):\n" + "\n".join(stale))
    assert not msg, "\n".join(msg)
