"""Charts for every experiment: replicas over time and latency over time (p50
and p95 of the jobs finished in each 10 s bin), one panel pair per run.
Reads the *_series.csv and *_latency.csv that experiments.py wrote."""

import csv
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

def chart(out: Path, name: str, title: str) -> None:
    series, lat = defaultdict(list), defaultdict(list)
    with open(out / f"{name}_series.csv") as f:
        for r in csv.DictReader(f):
            series[r["run"]].append((float(r["t"]), int(r["replicas"]), int(r["running"])))
    with open(out / f"{name}_latency.csv") as f:
        for r in csv.DictReader(f):
            lat[r["run"]].append((float(r["t_bin"]), float(r["p50_s"]), float(r["p95_s"])))
    runs = list(series)
    fig, axes = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
    colors = plt.cm.tab10.colors
    for i, run in enumerate(runs):
        c = colors[i % 10]
        t, rep, _ = zip(*series[run])
        axes[0].step(t, rep, where="post", color=c, label=run, lw=1.4)
        tb, p50, p95 = zip(*lat[run])
        axes[1].plot(tb, p50, color=c, lw=1.0)
        axes[1].plot(tb, p95, color=c, lw=1.0, ls="--")
    axes[0].set_ylabel("replicas (spec)")
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].set_ylabel("latency (s), p50 solid, p95 dashed")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("time (s)")
    axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=110)
    plt.close(fig)


TITLES = {
    "paper_base30": "Base 30 (old API): hpa1-5-70 vs hpa2-5-10-50, POST latency",
    "keda_queue_length": "KEDA queueLength 5/10/20, min 0/1 (12 MP: 80 img/s step, 2,000 batch)",
    "burst": "HPA vs KEDA on a 2,000-image batch (12 MP)",
    "startup": "imgflow start vs multi-second start (KEDA ql 10)",
}

if __name__ == "__main__":
    out = Path(sys.argv[1])
    for name, title in TITLES.items():
        if (out / f"{name}_series.csv").exists():
            chart(out, name, title)
            print(f"wrote {out / (name + '.png')}")
