"""A stand-in for training.pipelines.score at the pipeline boundary: same arguments, events and output, no model.

Each response's score is the number after "score=" in its text (0 when there is none), so a test
knows every score in advance. Run as `python tests/training/stub_score.py --model M --input I --output O`.
"""

import argparse
import json
import re
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--input")
    parser.add_argument("--output")
    args = parser.parse_args()
    rows = [json.loads(line) for line in open(args.input) if line.strip()]

    def emit(event, **payload):
        sys.stdout.write(json.dumps({"event": event, **payload}) + "\n")
        sys.stdout.flush()

    emit("start", kind="score", step=0, total=len(rows))
    with open(args.output, "w") as out:
        for step, row in enumerate(rows, 1):
            found = re.search(r"score=(-?[0-9.]+)", row["messages"][-1]["content"])
            out.write(json.dumps({"id": row["id"], "score": float(found.group(1)) if found else 0.0}) + "\n")
            emit("progress", step=step, total=len(rows), metrics={})
    emit("done", metrics={"rows": len(rows)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
