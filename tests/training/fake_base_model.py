"""Stands in for training.pipelines.base_model in tests of what the bootstrap prints: progress lines, a config."""

import argparse
import json
import sys
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--output", required=True)
parser.add_argument("--max-steps", type=int, default=600)
parser.add_argument("--seconds", type=float, default=100.0)
args = parser.parse_args()
print("a line of the build's own that is not an event")
for step in range(1, args.max_steps + 1):
    print(json.dumps({"event": "progress", "step": step, "total": args.max_steps, "metrics": {"loss": 7.0 - step}}))
    sys.stdout.flush()
out = Path(args.output)
out.mkdir(parents=True, exist_ok=True)
(out / "config.json").write_text("{}")
(out / "metrics.json").write_text(json.dumps({"steps": args.max_steps, "max_steps": args.max_steps, "seconds_cap": args.seconds}))
