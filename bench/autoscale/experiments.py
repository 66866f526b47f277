"""Every experiment of issue 18: the validation against the real runs, then
the autoscaling experiments. `python3 experiments.py OUTDIR` writes one
Markdown table and one CSV per experiment, plus the time series the charts
are drawn from, and prints the tables."""

from __future__ import annotations

import csv
import math
import statistics
import sys
from pathlib import Path

import costs
from controllers import Behavior, Rules, Policy, DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, imgflow_hpa_behavior, imgflow_keda_behavior
from loops import CpuHpa, Keda
from sim import (Cluster, Deployment, Group, OldApiUsers, PodSpec, Pool, Queue, Sim, Workload,
                 burst, open_loop, percentile, run_stages)

M = costs.load()
SEED = 18

# ------------------------------------------------------------------ workloads


def _row(rng):
    return rng.randrange(len(M.process_ms))


def native_on_machine(workers: int) -> tuple[Workload, dict]:
    """The native flow with LocalStack on the same 2 cores (the evaluation).

    LocalStack's measured CPU per image at saturation (phases.csv) is split
    over the S3/SQS calls of one image (localstack_ops.csv) at an equal cost
    per call, plus one call LocalStack makes itself (the S3 event's
    SendMessage, not in its request log): the client's PutObject and that
    event before the queue; ReceiveMessage, HeadObject, GetObject before the
    pipeline; three PutObjects (two outputs, the manifest) and the
    DeleteMessageBatch after it. Each job's amounts vary as the light run's
    measured stage times do (same job row for all stages). The worker's CPU
    is the measured pipeline time scaled to its measured CPU per image (the
    SDK's own work)."""
    ops = costs.localstack_ops_per_image()[f"native-{workers}w-saturation"]
    calls = sum(ops.values()) + 1  # + the S3 event's SendMessage
    per_call = M.ls_cpu_per_image_ms[workers] / calls / 1e3
    scale = M.worker_cpu_per_image_ms[workers] / M.mean("process_ms")
    mean_put, mean_dl, mean_up = M.mean("put_ms"), M.mean("download_ms"), M.mean("upload_ms")

    def stages(rng):
        i = _row(rng)
        return [("cpu", "ls", 3 * per_call * M.download_ms[i] / mean_dl),
                ("cpu", "pod", M.process_ms[i] * scale / 1e3),
                ("cpu", "ls", 4 * per_call * M.upload_ms[i] / mean_up)]

    def notify(rng):
        return [("cpu", "ls", per_call)]

    def client_put(rng):
        return 1 * per_call * M.put_ms[_row(rng)] / mean_put

    return Workload(stages, notify), {"per_call": per_call, "calls": calls, "client_put": client_put}


def native_in_cluster(cpu_scale: float = 1.0, old_api: bool = False) -> Workload:
    """The native flow on Kubernetes with S3/SQS outside the pods: the calls
    are waits of their measured light-load duration (LocalStack on an idle
    machine; real S3 adds tens of ms per call, the same for every setting),
    the pipeline is CPU on the pod. cpu_scale: 1 = the 1 MP default preset;
    old_api: the old API's single-output recipes (their measured worker CPU)."""
    base = M.worker_cpu_per_image_ms[1] / M.mean("process_ms")
    if old_api:
        base = M.old_api_worker_cpu_per_job_ms / M.mean("process_ms")

    def stages(rng):
        i = _row(rng)
        # the pipeline grows with the source (cpu_scale); the SDK's share of
        # the worker's CPU (base - 1) does not
        cpu = M.process_ms[i] * (cpu_scale + base - 1)
        return [("wait", "", M.download_ms[i] / 1e3), ("cpu", "pod", cpu / 1e3),
                ("wait", "", M.upload_ms[i] / 1e3)]

    def notify(rng):
        return [("wait", "", M.notify_ms[_row(rng)] / 1e3)]

    return Workload(stages, notify)


def summarize(values: list[float]) -> dict:
    return {"n": len(values), "mean": statistics.fmean(values) if values else float("nan"),
            "p50": percentile(values, 0.5), "p95": percentile(values, 0.95)}


# ----------------------------------------------------------------- validation


def validation_run(workers: int, mode: str, seed: int = SEED) -> dict:
    sim = Sim(seed)
    machine = Pool(sim, 2.0)  # the evaluation machine: 2 cores
    ls = Group(machine, 1.0)  # LocalStack: one Python process, the GIL holds it to ~1 core
    workload, split = native_on_machine(workers)
    # `imgflow worker` processes: as many jobs at once as CPUs, no cgroup limit,
    # already running when the phase starts.
    spec = PodSpec(concurrency=2, cpu_limit=2.0, schedule_s=0, create_s=0, app_start_s=0)
    queue = Queue(sim)
    dep = Deployment(sim, spec, queue, workload, workers, shared_groups={"ls": ls}, pool=machine)
    cluster = Cluster(sim, dep)
    uploads_done: list[float] = []

    def client_put(then=None):
        # the client's PUT of the 1 MP JPEG is LocalStack's work too
        put = split["client_put"](sim.rng)

        def landed():
            uploads_done.append(sim.now)
            cluster.upload()
            if then:
                then()
        run_stages(sim, [("cpu", "ls", put)], {"ls": ls}, landed)

    if mode == "light":  # 600 uploads at a fixed 4/s
        n = 600
        for k in range(n):
            sim.after(k / 4.0, client_put)
    else:  # 1500 uploads from 8 clients as fast as they can
        n = 1500
        started = [0]

        def client():
            if started[0] >= n:
                return
            started[0] += 1
            sim.after(0.001, client_put, client)  # presign: ~1 ms at the API
        for _ in range(8):
            sim.after(0, client)
    sim.run(stop=lambda: len(dep.completed) == n)
    lat = [(j.done - j.arrived) * 1e3 for j in cluster.jobs]
    fin = sorted(j.done for j in cluster.jobs)
    t10, t90 = percentile(fin, 0.1), percentile(fin, 0.9)
    sustained = 0.8 * n / (t90 - t10)
    last_up = max(uploads_done)
    after = [t for t in fin if t > last_up]
    draining = len(after) / (fin[-1] - last_up) if len(after) > 1 else float("nan")
    ls_busy = ls.cpu_used / fin[-1]
    return {"lat": summarize(lat), "sustained": sustained, "draining": draining, "ls_busy": ls_busy,
            "conserved": len(dep.completed) == n == cluster.queue.sent}


def validation() -> list[dict]:
    s = costs.evaluation_summary()
    rows = []
    for w in (1, 2):
        for mode in ("light", "saturation"):
            r = validation_run(w, mode)
            real = s[f"native-{w}w-{mode}/manifest"]
            real_rate = 4.0 if mode == "light" else {1: 40.3, 2: 37.1}[w]  # RESULTS.md "images/s"
            sim_rate = 4.0 if mode == "light" else r["sustained"]
            rows.append({
                "run": f"native-{w}w-{mode}",
                "real img/s": real_rate, "sim img/s": round(sim_rate, 1),
                "real p50 ms": real["p50_ms"], "sim p50 ms": round(r["lat"]["p50"], 1),
                "real p95 ms": real["p95_ms"], "sim p95 ms": round(r["lat"]["p95"], 1),
                "img/s Δ": _pct(sim_rate, real_rate), "p50 Δ": _pct(r["lat"]["p50"], real["p50_ms"]),
                "p95 Δ": _pct(r["lat"]["p95"], real["p95_ms"]),
                "sim LocalStack cores": round(r["ls_busy"], 2),
            })
    return rows


def _pct(sim: float, real: float) -> str:
    return f"{(sim - real) / real * 100:+.0f} %"


# ---------------------------------------------------------------- experiments


def run_cluster(*, workload: Workload, spec: PodSpec, scaler: str, horizon: float, feed, replicas: int = 1,
                node_cores: float | None = None, seed: int = SEED, scaler_args: dict | None = None,
                stop_when_done: bool = True):
    """Build a cluster, attach one autoscaler, feed it, run it. Returns the
    sim, the cluster and the feed's handle (e.g. the closed-loop users)."""
    sim = Sim(seed)
    queue = Queue(sim)
    dep = Deployment(sim, spec, queue, workload, replicas, node_cores=node_cores)
    cluster = Cluster(sim, dep)
    a = scaler_args or {}
    if scaler == "hpa":
        CpuHpa(sim, dep, a["target"], a["behavior"])
    elif scaler == "keda":
        Keda(sim, dep, a["queue_length"], a["min"], a["max"], a["behavior"])
    handle = feed(sim, cluster)
    stop = None
    if stop_when_done and hasattr(handle, "done"):
        stop = handle.done
    sim.run(until=horizon, stop=stop)
    return sim, cluster, handle


def outcome(sim: Sim, cluster: Cluster, latencies: list[float], extra: dict | None = None) -> dict:
    s = summarize(latencies)
    out = {"avg ms": round(s["mean"]), "p50 ms": round(s["p50"]), "p95 ms": round(s["p95"]),
           "max pods": max(r["replicas"] for r in cluster.series),
           "pod-minutes": round(cluster.dep.pod_seconds(sim.now) / 60, 1),
           "jobs done": len(cluster.dep.completed), "left in queue": cluster.unfinished(),
           "sim s": round(sim.now)}
    out.update(extra or {})
    return out


# The paper's old service, for the hpa1 vs hpa2 question: the processing was
# done in the request by a Spring Boot pod. Its CPU per request is what the
# paper's fixed 3-pod Base 30 run implies by the closed-loop law
# (U users, 3 POSTs of L and a GET of G per round: 3U / (3L + G) requests/s,
# each pod one core): 3 pods x (3 x 2.500 + 0.208) s / (3 x 30) = 0.257 s.
PAPER_BASE30_POST_S, PAPER_BASE30_GET_S = 2.500, 0.208
OLD_SERVICE_CPU_S = 3 * (3 * PAPER_BASE30_POST_S + PAPER_BASE30_GET_S) / (3 * 30)


def old_service_workload() -> Workload:
    def stages(rng):
        i = _row(rng)  # the measured job-to-job spread, scaled to the old mean
        return [("cpu", "pod", M.process_ms[i] / M.mean("process_ms") * OLD_SERVICE_CPU_S)]
    return Workload(stages, lambda rng: [])


SPRING = dict(app_start_s=8.0, app_start_cores=1.0)  # a multi-second JVM start, CPU-bound
PAPER_HPAS = {  # name: (min, max, target) -- autoscaling/v2 defaults for behavior
    "hpa1-5-70": (1, 5, 0.70),
    "hpa2-5-10-50": (2, 10, 0.50),
}


def exp_paper() -> tuple[list[dict], dict]:
    """hpa1-5-70 vs hpa2-5-10-50 at Base 30, for the old service and for imgflow."""
    rows, series = [], {}
    for service in ("old service (Spring-like)", "imgflow"):
        for node in ((None, "room to grow"), (6.0, "one 6-core node"), (4.0, "one 4-core node")):
            for name, (lo, hi, target) in PAPER_HPAS.items():
                if service == "imgflow":
                    wl = native_in_cluster(old_api=True)
                    spec = PodSpec()
                    up = lambda rng: M.put_ms[_row(rng)] / 1e3  # noqa: E731
                    get = lambda rng: 3 * M.download_ms[_row(rng)] / 1e3  # ListObjectsV2 + 2 GetObject  # noqa: E731
                    sync = False
                else:
                    wl = old_service_workload()
                    # one core per pod (the paper's pods), a Tomcat thread per
                    # request, traffic only to Ready pods through the Service
                    spec = PodSpec(concurrency=200, cpu_request=1.0, cpu_limit=1.0, receive_before_ready=False,
                                   pull_s=0.0, **SPRING)
                    up = lambda rng: 0.01  # noqa: E731
                    get = lambda rng: PAPER_BASE30_GET_S  # noqa: E731
                    sync = True
                beh = Behavior(lo, hi, up=DEFAULT_SCALE_UP, down=DEFAULT_SCALE_DOWN)

                def feed(sim, cluster, up=up, get=get, sync=sync):
                    users = OldApiUsers(sim, cluster, 30, 100, up, get, sync=sync)
                    users.start()
                    return users
                sim, cl, users = run_cluster(workload=wl, spec=spec, scaler="hpa", horizon=3600, feed=feed,
                                             replicas=lo, node_cores=node[0],
                                             scaler_args={"target": target, "behavior": beh})
                lat = [l * 1e3 for _, l in users.post_latencies]
                key = f"{service} / {node[1]} / {name}"
                rows.append({"service": service, "cluster": node[1], "hpa": name,
                             **outcome(sim, cl, lat)})
                series[key] = (cl.series, users.post_latencies)
    return rows, series


# CPU of the default preset on a 12 MP source vs the 1 MP one (bench/README.md)
TWELVE_MP = costs.PRESET_DEFAULT_12MP_MS / costs.PRESET_DEFAULT_1MP_MS


def step_and_burst(sim, cluster):
    """Camera uploads: idle, 80 img/s from t = 120 s for 10 minutes, idle,
    a 2,000-image batch at t = 1,200 s, idle until t = 1,800 s."""
    open_loop(sim, cluster, 80.0, 600, start=120)
    burst(sim, cluster, 2000, 1200)


def quiet_and_burst(sim, cluster):
    """2 img/s, and 2,000 images at once at t = 300 s."""
    open_loop(sim, cluster, 2.0, 1200)
    burst(sim, cluster, 2000, 300)


def exp_keda() -> tuple[list[dict], dict]:
    """KEDA queueLength 5/10/20, minReplicaCount 0 and 1, up to 20 pods, on
    12 MP uploads: a step to 40 img/s and a 2,000-image batch."""
    rows, series = [], {}
    wl = native_in_cluster(cpu_scale=TWELVE_MP)
    for ql in (5, 10, 20):
        for lo in (0, 1):
            sim, cl, _ = run_cluster(workload=wl, spec=PodSpec(), scaler="keda", horizon=1800, feed=step_and_burst,
                                     replicas=max(lo, 1), scaler_args={"queue_length": ql, "min": lo, "max": 20,
                                                                     "behavior": imgflow_keda_behavior(lo, 20)})
            rows.append(_burst_row(sim, cl, {"queueLength": ql, "min": lo}, burst_at=1200, step=(120, 720)))
            series[f"keda ql={ql} min={lo}"] = (cl.series, [(j.done, j.done - j.arrived) for j in cl.jobs if j.done])
    return rows, series


def _burst_row(sim, cl, head: dict, burst_at: float = 300, step: tuple[float, float] | None = None) -> dict:
    in_burst = lambda j: abs(j.arrived - burst_at) < 1e-9  # noqa: E731
    burst_jobs = [j for j in cl.jobs if in_burst(j)]
    drained = max((j.done for j in burst_jobs if j.done), default=float("nan")) - burst_at
    if any(j.done is None for j in burst_jobs):
        drained = float("nan")
    lat = [(j.done - j.arrived) * 1e3 for j in cl.jobs if j.done is not None]
    out = {**head, **outcome(sim, cl, lat)}
    if step:
        in_step = [(j.done - j.arrived) * 1e3 for j in cl.jobs if step[0] <= j.arrived < step[1] and j.done]
        out["80 img/s avg ms"] = round(statistics.fmean(in_step))
        out["80 img/s p95 ms"] = round(percentile(in_step, 0.95))
    out["burst drained s"] = round(drained, 1)
    quiet = [(j.done - j.arrived) * 1e3 for j in cl.jobs if j.done is not None and not in_burst(j)
             and not (step and step[0] <= j.arrived < step[1])]
    if quiet:
        out["other p95 ms"] = round(percentile(quiet, 0.95))
    return out


def exp_burst() -> tuple[list[dict], dict]:
    """The same 2,000-image batch (12 MP), imgflow's two components as
    shipped, wider maxima, a suggested scale-down, and fixed pools."""
    rows, series = [], {}
    wl = native_in_cluster(cpu_scale=TWELVE_MP)
    fast_down = lambda lo, hi: Behavior(max(1, lo), hi, up=DEFAULT_SCALE_UP,  # noqa: E731
                                        down=Rules(300.0, [Policy("Percent", 50, 60)]))
    setups = {
        "hpa as shipped (70 %, 1-5)": ("hpa", {"target": 0.70, "behavior": imgflow_hpa_behavior(1, 5)}, 1),
        "keda as shipped (ql 10, 1-5)": ("keda", {"queue_length": 10, "min": 1, "max": 5,
                                                  "behavior": imgflow_keda_behavior(1, 5)}, 1),
        "hpa 70 %, 1-5, default scale-up": ("hpa", {"target": 0.70, "behavior": Behavior(
            1, 5, up=DEFAULT_SCALE_UP, down=Rules(300.0, [Policy("Pods", 1, 60)]))}, 1),
        "keda ql 10, 1-5, scale-down 50 %/min": ("keda", {"queue_length": 10, "min": 1, "max": 5,
                                                          "behavior": fast_down(1, 5)}, 1),
        "hpa 70 %, 1-20": ("hpa", {"target": 0.70, "behavior": imgflow_hpa_behavior(1, 20)}, 1),
        "keda ql 10, 1-20": ("keda", {"queue_length": 10, "min": 1, "max": 20,
                                      "behavior": imgflow_keda_behavior(1, 20)}, 1),
        "keda ql 10, 1-20, scale-down 50 %/min": ("keda", {"queue_length": 10, "min": 1, "max": 20,
                                                            "behavior": fast_down(1, 20)}, 1),
        "fixed 1 pod": (None, None, 1),
        "fixed 5 pods": (None, None, 5),
    }
    for name, (kind, args, replicas) in setups.items():
        sim, cl, _ = run_cluster(workload=wl, spec=PodSpec(), scaler=kind, horizon=1800, feed=quiet_and_burst,
                                 replicas=replicas, scaler_args=args)
        rows.append(_burst_row(sim, cl, {"autoscaler": name}))
        series[name] = (cl.series, [(j.done, j.done - j.arrived) for j in cl.jobs if j.done])
    return rows, series


def batches(sim, cluster):
    """Idle between batches: 20 images at t = 120 s, 2,000 at t = 600 s, 20 at t = 1,300 s."""
    burst(sim, cluster, 20, 120)
    burst(sim, cluster, 2000, 600)
    burst(sim, cluster, 20, 1300)


def exp_startup(seeds=(18, 19, 20, 21, 22)) -> tuple[list[dict], dict]:
    """imgflow's start vs a multi-second (Spring-Boot-like, 8 s of one core)
    start, image cached or pulled cold (5 s), KEDA ql 10 with min 0 and 1, up
    to 20 pods, 12 MP batches between idle spells. Mean of 5 seeds."""
    rows, series = [], {}
    wl = native_in_cluster(cpu_scale=TWELVE_MP)
    starts = {
        "imgflow (25 ms)": dict(app_start_s=costs.IMGFLOW_START_S),
        "Spring-like (8 s at 1 core)": SPRING,
    }
    for sname, start in starts.items():
        for pull_name, pull in (("cached", 0.0), ("cold pull 5 s", 5.0)):
            for lo in (0, 1):
                spec = PodSpec(pull_s=pull, **start)
                per_seed = []
                for seed in seeds:
                    sim, cl, _ = run_cluster(workload=wl, spec=spec, scaler="keda", horizon=1800, feed=batches,
                                             replicas=lo, seed=seed,
                                             scaler_args={"queue_length": 10, "min": lo, "max": 20,
                                                          "behavior": imgflow_keda_behavior(lo, 20)})
                    r = _burst_row(sim, cl, {}, burst_at=600)
                    small = [(j.done - j.arrived) * 1e3 for j in cl.jobs if abs(j.arrived - 600) > 1e-9 and j.done]
                    r["20-image batches avg ms"] = statistics.fmean(small)
                    per_seed.append(r)
                    if seed == seeds[0]:
                        series[f"{sname} / {pull_name} / min {lo}"] = (
                            cl.series, [(j.done, j.done - j.arrived) for j in cl.jobs if j.done])
                keys = ["avg ms", "p95 ms", "burst drained s", "20-image batches avg ms", "pod-minutes", "max pods"]
                row = {"start": sname, "image": pull_name, "min": lo}
                for k in keys:
                    v = statistics.fmean(r[k] for r in per_seed)
                    row[k] = round(v, 1) if k in ("burst drained s", "pod-minutes") else round(v)
                rows.append(row)
    return rows, series


# -------------------------------------------------------------------- output


def write_table(rows: list[dict], out: Path, name: str, title: str) -> str:
    cols = list(rows[0].keys())
    with open(out / f"{name}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        w.writerows(rows)
    def fmt(v):
        if isinstance(v, float):
            return "–" if math.isnan(v) else f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return str(v)
    lines = [f"### {title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows]
    md = "\n".join(lines) + "\n"
    (out / f"{name}.md").write_text(md)
    return md


def write_series(series: dict, out: Path, name: str) -> None:
    with open(out / f"{name}_series.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "t", "replicas", "running", "ready", "terminating", "visible", "in_flight"])
        for run, (s, _) in series.items():
            for r in s:
                w.writerow([run, r["t"], r["replicas"], r["running"], r["ready"], r["terminating"], r["visible"], r["in_flight"]])
    # Latency over time in 10 s bins of completion time (the raw rows would be
    # tens of MB): how many finished, their p50 and p95.
    with open(out / f"{name}_latency.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "t_bin", "n", "p50_s", "p95_s"])
        for run, (_, lat) in series.items():
            bins: dict[int, list[float]] = {}
            for t, l in lat:
                bins.setdefault(int(t // 10), []).append(l)
            for b in sorted(bins):
                v = bins[b]
                w.writerow([run, b * 10, len(v), f"{percentile(v, 0.5):.4f}", f"{percentile(v, 0.95):.4f}"])


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    print(write_table(validation(), out, "validation", "Validation: the evaluation's fixed-worker runs, simulated vs real"))
    for name, fn, title in (
        ("paper_base30", exp_paper, "The paper's hpa1-5-70 vs hpa2-5-10-50 at Base 30 (POST latency)"),
        ("keda_queue_length", exp_keda, "KEDA queueLength and minReplicaCount, 1 to 20 pods (12 MP: idle, 80 img/s at t = 120-720 s, idle, 2,000 at t = 1,200 s)"),
        ("burst", exp_burst, "HPA vs KEDA on a 2,000-image batch (12 MP at t = 300 s over 2 img/s)"),
        ("startup", exp_startup, "imgflow's start vs a multi-second start (12 MP, KEDA ql 10, min 0/1, max 20; batches of 20, 2,000, 20 between idle spells; mean of 5 seeds)"),
    ):
        rows, series = fn()
        print(write_table(rows, out, name, title))
        write_series(series, out, name)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results"))
