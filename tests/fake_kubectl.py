#!/usr/bin/env python3
"""A stand-in for kubectl in tests: answers from recorded files, logs every call.

FAKE_KUBECTL_DIR holds `pods.json` (the answer to `get pods`), `lws.json` (`get
leaderworkerset`), `<pod>.log` (`logs <pod>`) and `<job>.log` for Job logs; each call's
arguments are appended to `calls.jsonl` and stdin to `stdin-<n>.json`.
"""

import json
import os
import sys
from pathlib import Path

root = Path(os.environ["FAKE_KUBECTL_DIR"])
args = sys.argv[1:]
calls = root / "calls.jsonl"
count = sum(1 for _ in calls.open()) if calls.exists() else 0
with calls.open("a") as out:
    out.write(json.dumps(args) + "\n")
if "apply" in args or "create" in args:
    (root / f"stdin-{count}.json").write_text(sys.stdin.read())
    print("applied")
    sys.exit(0)
if "get" in args:
    kind = args[args.index("get") + 1]
    answer = root / {"pods": "pods.json", "leaderworkerset": "lws.json"}.get(kind, f"{kind}.json")
elif "logs" in args:
    target = args[args.index("logs") + 1].removeprefix("job/")
    answer = root / f"{target}.log"
else:
    print("ok")
    sys.exit(0)
if not answer.exists():
    print(f'Error from server (NotFound): "{answer.stem}" not found', file=sys.stderr)
    sys.exit(1)
sys.stdout.write(answer.read_text())
