"""The full loop's report: a printed table, report.json, and report.html with charts that opens offline.

report.html is one self-contained file: the vendored Chart.js (static/vendor/chart.umd.min.js) is
inlined into it, and the data travels as JSON inside the page. Nothing is fetched when it opens.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

CHART_JS = Path(settings.BASE_DIR) / "static" / "vendor" / "chart.umd.min.js"
TARGETS = {"rm_gold_accuracy_clean": 0.9, "rm_gold_accuracy_noisy": 0.8, "rlhf_gold_win_rate": 0.65,
           "total_seconds": 15 * 60}
# Which logged metrics each run's chart shows (the first is the main curve).
RUN_CURVES = {
    "sft": ["loss", "mean_token_accuracy"],
    "reward": ["loss", "accuracy", "margin"],
    "rlhf": ["reward", "kl", "entropy"],
    "dpo": ["loss", "rewards/margins", "rewards/accuracies"],
}


def _num(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ci(rate: dict | None) -> str:
    if not rate or rate.get("win_rate") is None:
        return "-"
    low = rate.get("low", rate.get("ci_low"))
    high = rate.get("high", rate.get("ci_high"))
    return f"{rate['win_rate']:.3f} [{_num(low)}, {_num(high)}] (n={rate.get('n', '?')})"


def summary(data: dict) -> dict:
    """The headline numbers of a loop, with the targets the full loop must meet and whether each was met."""
    scores = data.get("scores") or {}
    accuracy = scores.get("reward_accuracy") or {}
    rlhf_metrics = ((data.get("models") or {}).get("rlhf") or {}).get("metrics") or {}
    reward_metrics = ((data.get("models") or {}).get("reward") or {}).get("metrics") or {}
    kl_series = (((data.get("runs") or {}).get("rlhf") or {}).get("metrics") or {}).get("kl") or []
    noise = (data.get("config") or {}).get("noise", 0.0)
    rm_gold = (accuracy.get("policy_samples") or {}).get("accuracy")
    rm_target = TARGETS["rm_gold_accuracy_clean"] if noise == 0 else TARGETS["rm_gold_accuracy_noisy"]
    rlhf_win = (scores.get("gold_win_rate") or {}).get("rlhf") or {}
    total = data.get("total_seconds")
    return {
        "noise": noise,
        "rm_gold_accuracy": rm_gold,
        "rm_gold_pairs": (accuracy.get("policy_samples") or {}).get("pairs"),
        "rm_synthetic_accuracy": (accuracy.get("synthetic") or {}).get("accuracy"),
        "rm_synthetic_pairs": (accuracy.get("synthetic") or {}).get("pairs"),
        "rm_label_accuracy": reward_metrics.get("eval_accuracy"),
        "rm_label_pairs": reward_metrics.get("eval_pairs"),
        "rm_target": rm_target,
        "gold": scores.get("gold") or {},
        "kl_final": rlhf_metrics.get("kl"),
        "kl_mean": sum(v for _, v in kl_series) / len(kl_series) if kl_series else None,
        "rlhf_reward_first": rlhf_metrics.get("first_reward"),
        "rlhf_reward_last": rlhf_metrics.get("reward"),
        "gold_win_rate": scores.get("gold_win_rate") or {},
        "human_win_rate": {
            name.split()[1]: ev for name, ev in (data.get("evaluations") or {}).items()
        },
        "total_seconds": total,
        "targets": {
            "reward model gold accuracy": (rm_gold, f">= {rm_target}", rm_gold is not None and rm_gold >= rm_target),
            "RLHF gold win rate vs SFT": (rlhf_win.get("win_rate"), f">= {TARGETS['rlhf_gold_win_rate']}",
                                          (rlhf_win.get("win_rate") or 0) >= TARGETS["rlhf_gold_win_rate"]),
            "KL reported": (rlhf_metrics.get("kl"), "present", rlhf_metrics.get("kl") is not None),
            "whole loop under 15 minutes": (total, f"< {TARGETS['total_seconds']} s",
                                            total is not None and total < TARGETS["total_seconds"]),
        },
    }


def table_text(data: dict) -> str:
    s = summary(data)
    project = (data.get("project") or {}).get("slug", "?")
    cfg = data.get("config") or {}
    lines = [
        f"Full loop on {project}: {cfg.get('labelers')} simulated labelers, noise {s['noise']:.2f}, "
        f"K={cfg.get('k')}, total {_num(s['total_seconds'], 1)} s",
        "",
        f"{'stage':<22}{'seconds':>9}  {'status':<10} detail",
    ]
    for stage in data.get("stages") or []:
        lines.append(f"{stage['name']:<22}{stage['seconds']:>9.1f}  {stage['status']:<10} {stage['detail'][:110]}")
    lines += ["", "quality"]
    rows = [
        (f"reward model accuracy vs gold, held-out SFT samples ({s['rm_gold_pairs'] or 0} pairs)", _num(s["rm_gold_accuracy"])),
        (f"reward model accuracy vs gold, synthetic candidate pairs ({s['rm_synthetic_pairs'] or 0})",
         _num(s["rm_synthetic_accuracy"])),
        (f"reward model accuracy vs the labels, platform's held-out split ({s['rm_label_pairs'] or 0})",
         _num(s["rm_label_accuracy"])),
    ]
    for name in ("base", "sft", "rlhf", "dpo"):
        gold = s["gold"].get(name)
        if gold:
            rows.append((f"gold score of {name} (mean ± std, {gold['n']} held-out prompts)",
                         f"{_num(gold['gold_mean'])} ± {_num(gold['gold_std'])}"))
    rows += [
        ("KL of RLHF from SFT (last logged / mean over the run)", f"{_num(s['kl_final'])} / {_num(s['kl_mean'])}"),
        ("RLHF mean reward (first -> last logged)", f"{_num(s['rlhf_reward_first'])} -> {_num(s['rlhf_reward_last'])}"),
    ]
    for name, rate in s["gold_win_rate"].items():
        rows.append((f"gold win rate {name} vs sft", _ci(rate)))
    for name, ev in s["human_win_rate"].items():
        rows.append((f"simulated-labeler A/B win rate {name} vs sft", _ci(
            {"win_rate": ev.get("win_rate"), "low": ev.get("ci_low"), "high": ev.get("ci_high"), "n": ev.get("n")}
        )))
    width = max(len(r[0]) for r in rows) + 2
    lines += [f"  {label:<{width}}{value}" for label, value in rows]
    lines += ["", "targets"]
    for name, (value, target, ok) in s["targets"].items():
        lines.append(f"  {name:<{width}}{_num(value)} ({target}): {'met' if ok else 'NOT met'}")
    failed = [c for c in data.get("lineage") or [] if not c["ok"]]
    lines.append(f"  {'lineage links':<{width}}{len(data.get('lineage') or []) - len(failed)}/"
                 f"{len(data.get('lineage') or [])} hold")
    if data.get("error"):
        lines += ["", f"FAILED: {data['error']}"]
    return "\n".join(lines)


def charts(data: dict) -> dict:
    """The chart data the page draws: stage times, run curves, gold scores, win rates."""
    runs = {}
    for name, run in (data.get("runs") or {}).items():
        metrics = run.get("metrics") or {}
        wanted = RUN_CURVES.get(run.get("kind"), []) or list(metrics)[:3]
        runs[name] = {m: metrics[m] for m in wanted if m in metrics}
    s = summary(data)
    win_rates = []
    for name, rate in s["gold_win_rate"].items():
        win_rates.append({"label": f"{name} vs sft (gold)", "rate": rate.get("win_rate"),
                          "low": rate.get("low"), "high": rate.get("high")})
    for name, ev in s["human_win_rate"].items():
        win_rates.append({"label": f"{name} vs sft (labelers)", "rate": ev.get("win_rate"),
                          "low": ev.get("ci_low"), "high": ev.get("ci_high")})
    return {
        "stages": [{"name": st["name"], "seconds": round(st["seconds"], 2)} for st in data.get("stages") or []],
        "runs": runs,
        "gold": {name: g["gold_mean"] for name, g in s["gold"].items()},
        "win_rates": win_rates,
    }


def report_write(*, data: dict, report_dir: Path) -> tuple[Path, str]:
    """Write table.txt, report.json and report.html into report_dir. Returns (html path, table)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    table = table_text(data)
    (report_dir / "table.txt").write_text(table + "\n")
    (report_dir / "report.json").write_text(json.dumps(data, indent=2, default=str))
    html = render_to_string("training/loop_report.html", {
        "data": data,
        "table": table,
        "summary": summary(data),
        "charts": charts(data),
        "samples": (data.get("scores") or {}).get("samples") or {},
        "chart_js": mark_safe(CHART_JS.read_text().replace("</script", "<\\/script")),
    })
    path = report_dir / "report.html"
    path.write_text(html)
    return path, table
