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
# Reward-model accuracy against gold: (in distribution, out of distribution) at noise 0 and with noise.
RM_TARGETS = {"clean": (0.9, 0.8), "noisy": (0.8, 0.7)}
TARGETS = {"rlhf_gold_win_rate": 0.65, "distinct_2_ratio": 0.8, "round2_tied_share": 0.25, "total_seconds": 15 * 60}
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


def both_met(inside, outside, target_in: float, target_out: float) -> bool:
    """A target with an in- and an out-of-distribution figure is met only when both figures meet it."""
    return inside is not None and outside is not None and inside >= target_in and outside >= target_out


def _pair(inside, outside) -> str:
    return f"in {_num(inside)} / out {_num(outside)}"


def collapse_warnings(*, diversity: dict, round2: dict | None, baseline: str = "sft") -> list[str]:
    """Why the policies look collapsed: distinct-2 under 0.8x the baseline's, or too many all-tied round-2 tasks."""
    warnings = []
    base = (diversity.get(baseline) or {}).get("distinct_2")
    for name, div in diversity.items():
        mine = div.get("distinct_2")
        if name in (baseline, "base") or mine is None or not base:
            continue
        if mine < TARGETS["distinct_2_ratio"] * base:
            warnings.append(f"{name}'s distinct-2 {mine:.3f} is under {TARGETS['distinct_2_ratio']}x {baseline}'s "
                            f"{base:.3f}: its answers collapse onto few forms")
    share = (round2 or {}).get("tied_share")
    if share is not None and share > TARGETS["round2_tied_share"]:
        warnings.append(f"{share:.0%} of the second round's comparisons are all tied (over "
                        f"{TARGETS['round2_tied_share']:.0%}): the policy's K answers are indistinguishable")
    return warnings


def summary(data: dict) -> dict:
    """The headline numbers of a loop, with the targets the full loop must meet and whether each was met."""
    scores = data.get("scores") or {}
    accuracy = scores.get("reward_accuracy") or {}
    rlhf_metrics = ((data.get("models") or {}).get("rlhf") or {}).get("metrics") or {}
    reward_metrics = ((data.get("models") or {}).get("reward") or {}).get("metrics") or {}
    kl_series = (((data.get("runs") or {}).get("rlhf") or {}).get("metrics") or {}).get("kl") or []
    noise = (data.get("config") or {}).get("noise", 0.0)
    in_dist = accuracy.get("in_distribution") or accuracy.get("policy_samples") or {}
    out_dist = accuracy.get("out_of_distribution") or {}
    rm_in, rm_out = in_dist.get("accuracy"), out_dist.get("accuracy")
    rm_target_in, rm_target_out = RM_TARGETS["clean" if noise == 0 else "noisy"]
    rlhf_win = (scores.get("gold_win_rate") or {}).get("rlhf") or {}
    rlhf_win_in = (scores.get("gold_win_rate_in") or {}).get("rlhf") or {}
    diversity = scores.get("diversity") or {}
    d2_sft = (diversity.get("sft") or {}).get("distinct_2")
    d2_rlhf = (diversity.get("rlhf") or {}).get("distinct_2")
    d2_ratio = d2_rlhf / d2_sft if d2_rlhf is not None and d2_sft else None
    known_sft = (diversity.get("sft") or {}).get("distinct_2_known")
    known_rlhf = (diversity.get("rlhf") or {}).get("distinct_2_known")
    known_ratio = known_rlhf / known_sft if known_rlhf is not None and known_sft else None
    round2 = (data.get("labeling") or {}).get("comparisons rlhf") or {}
    judged = (round2.get("by_kind") or {}).get("comparison", 0)
    round2 = {"tied": round2.get("ties"), "judged": judged,
              "tied_share": round2.get("ties", 0) / judged if judged else None}
    round1 = (data.get("labeling") or {}).get("comparisons") or {}
    judged1 = (round1.get("by_kind") or {}).get("comparison", 0)
    round1_share = round1.get("ties", 0) / judged1 if judged1 else None
    adversarial = accuracy.get("adversarial") or {}
    total = data.get("total_seconds")
    win_target = TARGETS["rlhf_gold_win_rate"]
    return {
        "noise": noise,
        "rm_gold_accuracy": rm_in,
        "rm_gold_pairs": in_dist.get("pairs"),
        "rm_ood_accuracy": rm_out,
        "rm_ood_pairs": out_dist.get("pairs"),
        "rm_synthetic_accuracy": (accuracy.get("synthetic") or {}).get("accuracy"),
        "rm_synthetic_pairs": (accuracy.get("synthetic") or {}).get("pairs"),
        "rm_adversarial": adversarial,
        "rm_label_accuracy": reward_metrics.get("eval_accuracy"),
        "rm_label_pairs": reward_metrics.get("eval_pairs"),
        "rm_target": rm_target_in,
        "rm_target_out": rm_target_out,
        "gold": scores.get("gold") or {},
        "gold_in": scores.get("gold_in") or {},
        "diversity": diversity,
        "gold_terms": scores.get("gold_terms") or {},
        "distinct_2_ratio": d2_ratio,
        "distinct_2_known_ratio": known_ratio,
        "round1_tied_share": round1_share,
        "round2": round2,
        "collapse_warnings": collapse_warnings(diversity=diversity, round2=round2),
        "kl_curve": scores.get("kl_curve") or [],
        "kl_final": rlhf_metrics.get("kl"),
        "kl_mean": sum(v for _, v in kl_series) / len(kl_series) if kl_series else None,
        "rlhf_reward_first": rlhf_metrics.get("first_reward"),
        "rlhf_reward_last": rlhf_metrics.get("reward"),
        "gold_win_rate": scores.get("gold_win_rate") or {},
        "gold_win_rate_in": scores.get("gold_win_rate_in") or {},
        "human_win_rate": {
            name.split()[1]: ev for name, ev in (data.get("evaluations") or {}).items()
        },
        "total_seconds": total,
        "targets": {
            "reward model gold accuracy": (
                _pair(rm_in, rm_out), f"in >= {rm_target_in}, out >= {rm_target_out}",
                both_met(rm_in, rm_out, rm_target_in, rm_target_out)),
            "RLHF gold win rate vs SFT": (
                _pair(rlhf_win_in.get("win_rate"), rlhf_win.get("win_rate")), f"in and out >= {win_target}",
                both_met(rlhf_win_in.get("win_rate"), rlhf_win.get("win_rate"), win_target, win_target)),
            "RLHF distinct-2 / SFT's": (d2_ratio, f">= {TARGETS['distinct_2_ratio']}",
                                        d2_ratio is not None and d2_ratio >= TARGETS["distinct_2_ratio"]),
            "round-2 comparisons all tied": (round2["tied_share"], f"< {TARGETS['round2_tied_share']}",
                                             round2["tied_share"] is not None
                                             and round2["tied_share"] < TARGETS["round2_tied_share"]),
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
    lines += ["", "quality (in = training templates and topics; out = held-out templates and topics)"]
    rows = [
        (f"reward model accuracy vs gold, SFT samples in distribution ({s['rm_gold_pairs'] or 0} pairs)",
         _num(s["rm_gold_accuracy"])),
        (f"reward model accuracy vs gold, SFT samples out of distribution ({s['rm_ood_pairs'] or 0} pairs)",
         _num(s["rm_ood_accuracy"])),
        (f"reward model accuracy vs gold, synthetic candidate pairs ({s['rm_synthetic_pairs'] or 0})",
         _num(s["rm_synthetic_accuracy"])),
        (f"reward model accuracy vs the labels, platform's held-out split ({s['rm_label_pairs'] or 0})",
         _num(s["rm_label_accuracy"])),
    ]
    for kind, acc in s["rm_adversarial"].items():
        rows.append((f"reward model prefers a best answer to a gamed one: {kind} ({acc.get('pairs', 0)})",
                     _num(acc.get("accuracy"))))
    for name in ("base", "sft", "rlhf", "dpo"):
        gold, gold_in = s["gold"].get(name), s["gold_in"].get(name)
        if gold:
            rows.append((f"gold score of {name}, out of distribution (mean ± std, {gold['n']} prompts)",
                         f"{_num(gold['gold_mean'])} ± {_num(gold['gold_std'])}"))
        if gold_in:
            rows.append((f"gold score of {name}, in distribution (mean ± std, {gold_in['n']} prompts)",
                         f"{_num(gold_in['gold_mean'])} ± {_num(gold_in['gold_std'])}"))
    for name, terms in s["gold_terms"].items():
        shown = ", ".join(f"{term} {value:+.2f}" for term, value in terms.items() if abs(value) >= 0.005) or "all 0"
        rows.append((f"where {name}'s gold score comes from (mean term, out of distribution)", shown))
    for name, div in s["diversity"].items():
        rows.append((f"diversity of {name} ({div.get('samples')} samples): distinct-1 / distinct-2 / self-BLEU",
                     f"{_num(div.get('distinct_1'))} / {_num(div.get('distinct_2'))} / {_num(div.get('self_bleu'))}"))
        if div.get("distinct_2_known") is not None:
            rows.append((f"distinct-2 of {name} without the bigrams of garbled words",
                         _num(div.get("distinct_2_known"))))
    if s.get("distinct_2_known_ratio") is not None:
        rows.append(("RLHF distinct-2 / SFT's without garbled words (not a target: garbling counts as diversity)",
                     _num(s["distinct_2_known_ratio"])))
    rows += [
        ("KL of RLHF from SFT (last logged / mean over the run)", f"{_num(s['kl_final'])} / {_num(s['kl_mean'])}"),
        ("RLHF mean reward (first -> last logged)", f"{_num(s['rlhf_reward_first'])} -> {_num(s['rlhf_reward_last'])}"),
        ("all-tied comparisons, round 1 (SFT) / round 2 (RLHF)",
         f"{_num(s['round1_tied_share'])} / {_num(s['round2']['tied_share'])}"),
    ]
    for point in s["kl_curve"]:
        rows.append((f"RLHF step {point['step']}: KL to SFT / gold / proxy reward",
                     f"{_num(point['kl'])} / {_num(point['gold'])} / {_num(point.get('proxy'))}"))
    for name, rate in s["gold_win_rate"].items():
        rows.append((f"gold win rate {name} vs sft, out of distribution", _ci(rate)))
        rows.append((f"gold win rate {name} vs sft, in distribution", _ci(s["gold_win_rate_in"].get(name))))
    for name, ev in s["human_win_rate"].items():
        rows.append((f"simulated-labeler A/B win rate {name} vs sft (held-out prompts)", _ci(
            {"win_rate": ev.get("win_rate"), "low": ev.get("ci_low"), "high": ev.get("ci_high"), "n": ev.get("n")}
        )))
    width = max(len(r[0]) for r in rows) + 2
    lines += [f"  {label:<{width}}{value}" for label, value in rows]
    lines += ["", "targets"]
    for name, (value, target, ok) in s["targets"].items():
        lines.append(f"  {name:<{width}}{_num(value)} ({target}): {'met' if ok else 'NOT met'}")
    for warning in s["collapse_warnings"]:
        lines.append(f"  WARNING collapse: {warning}")
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
        "kl_curve": s["kl_curve"],
        "diversity": {name: {k: d.get(k) for k in ("distinct_1", "distinct_2", "distinct_2_known", "self_bleu")}
                      for name, d in s["diversity"].items()},
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
        "term_names": sorted({t for terms in summary(data)["gold_terms"].values() for t in terms}),
        "target_rows": [{"name": name, "value": _num(value), "goal": goal, "ok": ok}
                        for name, (value, goal, ok) in summary(data)["targets"].items()],
        "charts": charts(data),
        "samples": (data.get("scores") or {}).get("samples") or {},
        "samples_per_model": max((len(v) for v in ((data.get("scores") or {}).get("samples") or {}).values()), default=0),
        "chart_js": mark_safe(CHART_JS.read_text().replace("</script", "<\\/script")),
    })
    path = report_dir / "report.html"
    path.write_text(html)
    return path, table
