"""Measured costs the simulator draws from, all read from the committed
evaluation (bench/results/evaluation/, one real run on 2026-11-28, see
bench/RESULTS.md) and bench/README.md's per-preset timings. Nothing here is
tuned to make the validation pass: every number is a measurement or a ratio
of two measurements, named where it is computed."""

from __future__ import annotations

import csv
import gzip
import statistics
from dataclasses import dataclass
from pathlib import Path

EVAL = Path(__file__).resolve().parent.parent / "results" / "evaluation"

# bench/README.md, preset_default on the 12 MP fixture vs the 1 MP one (imgflow
# column, one thread): 80.3 ms vs 10.4 ms. A 12 MP source costs this much more.
PRESET_DEFAULT_12MP_MS = 80.3
PRESET_DEFAULT_1MP_MS = 10.4

# README.md "Deploy": `imgflow worker` polls ~25 ms after it is started.
IMGFLOW_START_S = 0.025


def _phase_cpu() -> dict[str, dict[str, float]]:
    with open(EVAL / "phases.csv") as f:
        return {r["phase"]: {k: float(v) for k, v in r.items() if k != "phase"} for r in csv.DictReader(f)}


def _jobs() -> list[dict[str, str]]:
    with gzip.open(EVAL / "native_jobs.csv.gz", "rt") as f:
        return list(csv.DictReader(f))


@dataclass
class Measured:
    """Per-image samples of the native flow at light load (4 uploads/s, one
    worker and two: the machine was mostly idle, so wall time ~ work) and the
    CPU split of the saturation phases."""

    put_ms: list[float]  # client PUT of the 1 MP upload, LocalStack's work
    download_ms: list[float]  # worker GET of the source (+ HEAD)
    process_ms: list[float]  # the default preset, decode to encode
    upload_ms: list[float]  # worker PUTs of 2 outputs + manifest, delete
    notify_ms: list[float]  # PUT done -> worker has it, at light load
    ls_cpu_per_image_ms: dict[int, float]  # LocalStack CPU per image, saturation, by workers
    worker_cpu_per_image_ms: dict[int, float]  # worker processes' CPU per image, saturation
    old_api_worker_cpu_per_job_ms: float  # worker CPU per old-API processing job, Base 30

    def mean(self, name: str) -> float:
        return statistics.fmean(getattr(self, name))


def load() -> Measured:
    jobs = _jobs()
    light = [r for r in jobs if r["mode"] == "light"]
    put = [float(r["put_ms"]) for r in light]
    dl = [float(r["download_ms"]) for r in light]
    pr = [float(r["process_ms"]) for r in light]
    up = [float(r["upload_ms"]) for r in light]
    # Upload complete -> manifest minus the worker's three stages: the S3
    # event's trip to SQS and the long poll's answer, at light load.
    notify = [
        max(0.0, (float(r["finished"]) - float(r["put_done"])) * 1000 - float(r["download_ms"])
            - float(r["process_ms"]) - float(r["upload_ms"]))
        for r in light
    ]
    ph = _phase_cpu()
    ls = {w: ph[f"native-{w}w-saturation"]["cpu_localstack"] / ph[f"native-{w}w-saturation"]["items"] * 1000 for w in (1, 2)}
    wk = {w: ph[f"native-{w}w-saturation"]["cpu_workers"] / ph[f"native-{w}w-saturation"]["items"] * 1000 for w in (1, 2)}
    # Old API: CPU per request over 4 requests per round, 3 of them jobs.
    b30 = ph["base30"]
    old = b30["cpu_workers"] / b30["items"] * 1000 * 4 / 3
    return Measured(put, dl, pr, up, notify, ls, wk, old)


def localstack_ops_per_image() -> dict[str, dict[str, float]]:
    """S3/SQS calls per image (native) or per request (old API), by phase."""
    ph = _phase_cpu()
    out: dict[str, dict[str, float]] = {}
    with open(EVAL / "localstack_ops.csv") as f:
        for r in csv.DictReader(f):
            op = r["operation"] + ("" if r["status"] == "200" else f" {r['status']}")
            out.setdefault(r["phase"], {})
            out[r["phase"]][op] = out[r["phase"]].get(op, 0) + int(r["count"]) / ph[r["phase"]]["items"]
    return out


def evaluation_summary() -> dict[str, dict[str, float]]:
    """summary.csv by series (e.g. 'native-1w-saturation/manifest')."""
    with open(EVAL / "summary.csv") as f:
        return {r["series"]: {k: float(v) if v not in ("", "nan") else float("nan") for k, v in r.items() if k != "series"}
                for r in csv.DictReader(f)}
