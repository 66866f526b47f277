"""A discrete-event simulator of imgflow's worker Deployment.

The pieces, in the order a job meets them:

  arrivals (open loop, bursts, or the old API's closed-loop users)
    -> S3 event -> SQS queue (visible / in flight, visibility timeout)
    -> worker pod slots (IMGFLOW_WORKER_CONCURRENCY jobs at once)
    -> stages: GET the source, the pipeline on the pod's CPU, PUT the outputs
    -> manifest written: the job is done, its message deleted.

CPU is a fluid: every running CPU stage is a task that wants one core (a job
is single-threaded); a pod (or process) caps its tasks at its CPU limit; a
pool (a node or a machine) shares its cores max-min fairly among all tasks on
it. Between two events every rate is constant, so the next completion is
exact. Time is in seconds; CPU work in core-seconds.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

INF = float("inf")


class Sim:
    """The clock and the event heap."""

    def __init__(self, seed: int = 1):
        self.now = 0.0
        self._heap: list = []
        self._seq = itertools.count()
        self.rng = random.Random(seed)

    def after(self, delay: float, fn: Callable, *args) -> None:
        heapq.heappush(self._heap, (self.now + max(0.0, delay), next(self._seq), fn, args))

    def run(self, until: float = INF, stop: Callable[[], bool] | None = None) -> None:
        while self._heap and self._heap[0][0] <= until:
            t, _, fn, args = heapq.heappop(self._heap)
            self.now = t
            fn(*args)
            if stop is not None and stop():
                return
        self.now = min(until, self.now) if until == INF else until


# --------------------------------------------------------------------------- CPU


class Group:
    """A cgroup or a process: its tasks together get at most `cap` cores.
    `cpu_used` accumulates core-seconds, which is what the HPA's metric reads."""

    def __init__(self, pool: "Pool", cap: float):
        self.pool = pool
        self.cap = cap
        self.cpu_used = 0.0


class Task:
    def __init__(self, group: Group, work: float, on_done: Callable[[], None]):
        self.group = group
        self.remaining = work
        self.rate = 0.0
        self.on_done = on_done


class Pool:
    """Cores shared by every task on a node (or a whole machine)."""

    def __init__(self, sim: Sim, capacity: float):
        self.sim = sim
        self.capacity = capacity
        self.tasks: list[Task] = []
        self._last = 0.0
        self._version = 0

    def start(self, group: Group, work: float, on_done: Callable[[], None]) -> Task:
        self._advance()
        task = Task(group, work, on_done)
        self.tasks.append(task)
        self._reschedule()
        return task

    def cancel(self, task: Task) -> None:
        self._advance()
        if task in self.tasks:
            self.tasks.remove(task)
        self._reschedule()

    def sync(self) -> None:
        """Bring every group's cpu_used up to now (for a metrics scrape)."""
        self._advance()

    def _advance(self) -> None:
        dt = self.sim.now - self._last
        if dt > 0:
            for t in self.tasks:
                done = t.rate * dt
                t.remaining -= done
                t.group.cpu_used += done
        self._last = self.sim.now

    def _rates(self) -> None:
        # Max-min fairness: each task wants 1 core; a group of n tasks with
        # limit L caps each of them at L/n. Fill the lowest caps first.
        by_group: dict[Group, list[Task]] = {}
        for t in self.tasks:
            by_group.setdefault(t.group, []).append(t)
        order = sorted(by_group.items(), key=lambda kv: min(1.0, kv[0].cap / len(kv[1])))
        left, n_left = self.capacity, len(self.tasks)
        for group, tasks in order:
            rate = min(1.0, group.cap / len(tasks), left / n_left)
            for t in tasks:
                t.rate = rate
            left -= rate * len(tasks)
            n_left -= len(tasks)

    def _reschedule(self) -> None:
        self._version += 1
        if not self.tasks:
            return
        self._rates()
        soonest = min((t.remaining / t.rate for t in self.tasks if t.rate > 0), default=INF)
        if soonest < INF:
            self.sim.after(soonest, self._on_finish, self._version)

    def _on_finish(self, version: int) -> None:
        if version != self._version:
            return  # the rates changed since this was scheduled
        self._advance()
        done = [t for t in self.tasks if t.remaining <= 1e-12]
        self.tasks = [t for t in self.tasks if t.remaining > 1e-12]
        self._reschedule()
        for t in done:
            t.on_done()


# ------------------------------------------------------------------------- queue


@dataclass
class Job:
    id: int
    arrived: float  # upload complete (the S3 object exists)
    done: float | None = None
    receives: int = 0
    on_done: Callable[["Job"], None] | None = None


class Queue:
    """SQS as the worker sees it: receive hands the oldest visible message to a
    waiting long poll; a received message is in flight until deleted, handed
    back (visibility 0) or its visibility timeout runs out."""

    def __init__(self, sim: Sim, visibility_timeout: float = 120.0):
        self.sim = sim
        self.visibility_timeout = visibility_timeout
        self.visible: deque[Job] = deque()
        self.in_flight: dict[int, int] = {}  # job id -> receipt
        self.waiting: list[Callable[[Job], None]] = []  # long polls
        self._receipts = itertools.count(1)
        self.sent = 0
        self.redelivered = 0

    def send(self, job: Job) -> None:
        self.sent += 1
        self.visible.append(job)
        self._dispatch()

    def poll(self, receiver: Callable[[Job], None]) -> None:
        self.waiting.append(receiver)
        self._dispatch()

    def cancel_poll(self, receiver: Callable[[Job], None]) -> None:
        if receiver in self.waiting:
            self.waiting.remove(receiver)

    def delete(self, job: Job, receipt: int) -> None:
        if self.in_flight.get(job.id) == receipt:
            del self.in_flight[job.id]

    def hand_back(self, job: Job, receipt: int) -> None:
        if self.in_flight.get(job.id) == receipt:
            del self.in_flight[job.id]
            self.visible.appendleft(job)
            self._dispatch()

    def _dispatch(self) -> None:
        while self.visible and self.waiting:
            receiver = self.waiting.pop(self.sim.rng.randrange(len(self.waiting)))
            job = self.visible.popleft()
            receipt = next(self._receipts)
            self.in_flight[job.id] = receipt
            job.receives += 1
            self.sim.after(self.visibility_timeout, self._expire, job, receipt)
            receiver(job, receipt)

    def _expire(self, job: Job, receipt: int) -> None:
        if self.in_flight.get(job.id) == receipt:  # never deleted: SQS shows it again
            self.redelivered += 1
            del self.in_flight[job.id]
            self.visible.append(job)
            self._dispatch()


# -------------------------------------------------------------------------- pods


@dataclass
class PodSpec:
    concurrency: int = 2  # IMGFLOW_WORKER_CONCURRENCY in k8s/base/worker.yaml
    cpu_request: float = 1.0
    cpu_limit: float = 2.0
    schedule_s: float = 1.0  # scheduler + kubelet admission on a node with room
    pull_s: float = 0.0  # image already on the node (IfNotPresent); see experiments
    create_s: float = 0.5  # sandbox + container start by the runtime
    app_start_s: float = 0.025  # imgflow: README "Deploy"
    app_start_cores: float = 0.0  # cores burnt while starting (a JVM: ~1)
    probe_period: float = 10.0  # readinessProbe.periodSeconds
    receive_before_ready: bool = True  # a worker long-polls once started; a Service routes only to Ready pods
    shutdown_grace: float = 45.0  # IMGFLOW_SHUTDOWN_GRACE
    request_cpu_for_cost: float = 1.0


class Pod:
    """One worker: pending -> starting -> running (-> ready) -> terminating -> gone."""

    def __init__(self, dep: "Deployment", name: int):
        self.dep, self.name = dep, name
        sim = dep.sim
        self.created = sim.now
        self.state = "pending"
        self.start_time: float | None = None
        self.running_since: float | None = None
        self.ready_time: float | None = None
        self.gone_at: float | None = None
        self.pool = dep.pool_for_pod()
        self.group = Group(self.pool, dep.spec.cpu_limit)
        self.busy: dict[int, tuple] = {}  # slot -> (job, receipt, current task/None, token)
        self.polls: dict[int, Callable] = {}
        self.metric: tuple[float, float] | None = None  # (usage cores, sample time)
        self._last_cpu = 0.0
        self._last_scrape: float | None = None
        self._tokens = itertools.count()
        s = dep.spec
        sim.after(s.schedule_s, self._scheduled)

    # lifecycle
    def _scheduled(self) -> None:
        if self.state != "pending":
            return
        self.start_time = self.dep.sim.now
        self.dep.sim.after(self.dep.spec.pull_s + self.dep.spec.create_s, self._container_started)

    def _container_started(self) -> None:
        if self.state != "pending":
            return
        s = self.dep.spec
        self.state = "starting"
        self.container_start = self.dep.sim.now
        if s.app_start_cores > 0:
            self.pool.start(self.group, s.app_start_s * s.app_start_cores, self._app_up)
        else:
            self.dep.sim.after(s.app_start_s, self._app_up)

    def _app_up(self) -> None:
        if self.state != "starting":
            return
        s, sim = self.dep.spec, self.dep.sim
        self.state = "running"
        self.running_since = sim.now
        # Readiness probes run every period from the container's start; the
        # first one after the app answers makes the pod Ready.
        since = sim.now - self.container_start
        k = math.ceil(since / s.probe_period - 1e-9)
        sim.after(k * s.probe_period - since, self._ready)
        if s.receive_before_ready:
            self._open_slots()

    def _ready(self) -> None:
        if self.state != "running":
            return
        self.ready_time = self.dep.sim.now
        if not self.dep.spec.receive_before_ready:
            self._open_slots()

    @property
    def ready(self) -> bool:
        return self.state == "running" and self.ready_time is not None

    def _open_slots(self) -> None:
        for slot in range(self.dep.spec.concurrency):
            if slot not in self.busy:
                self._poll(slot)

    def _poll(self, slot: int) -> None:
        def receive(job: Job, receipt: int, slot=slot) -> None:
            self.polls.pop(slot, None)
            self._run(slot, job, receipt)

        self.polls[slot] = receive
        self.dep.queue.poll(receive)

    # a job's stages
    def _run(self, slot: int, job: Job, receipt: int) -> None:
        stages = self.dep.workload.stages(self.dep.sim.rng)
        token = next(self._tokens)
        self.busy[slot] = (job, receipt, None, token)
        self._next_stage(slot, token, stages, 0)

    def _next_stage(self, slot: int, token: int, stages: list, i: int) -> None:
        entry = self.busy.get(slot)
        if entry is None or entry[3] != token:
            return  # aborted at the end of a shutdown grace
        job, receipt, _, _ = entry
        if i == len(stages):
            self._finish(slot, job, receipt)
            return
        kind, where, amount = stages[i]
        cont = lambda: self._next_stage(slot, token, stages, i + 1)  # noqa: E731
        if kind == "wait":
            self.busy[slot] = (job, receipt, None, token)
            self.dep.sim.after(amount, cont)
        else:  # "cpu" on the pod itself or on a shared process (LocalStack)
            group = self.group if where == "pod" else self.dep.shared_groups[where]
            task = group.pool.start(group, amount, cont)
            self.busy[slot] = (job, receipt, task, token)

    def _finish(self, slot: int, job: Job, receipt: int) -> None:
        del self.busy[slot]
        self.dep.queue.delete(job, receipt)
        if job.done is None:
            job.done = self.dep.sim.now
            self.dep.completed.append(job)
            if job.on_done:
                job.on_done(job)
        if self.state == "running":
            self._poll(slot)
        elif self.state == "terminating" and not self.busy:
            self._gone()

    # scale-down
    def terminate(self) -> None:
        """SIGTERM: stop receiving, let jobs finish for the grace, hand back the rest."""
        if self.state in ("terminating", "gone"):
            return
        early = self.state in ("pending", "starting")
        self.state = "terminating"
        for receiver in self.polls.values():
            self.dep.queue.cancel_poll(receiver)
        self.polls.clear()
        if early or not self.busy:
            self._gone()
        else:
            self.dep.sim.after(self.dep.spec.shutdown_grace, self._grace_over)

    def _grace_over(self) -> None:
        if self.state != "terminating":
            return
        for slot, (job, receipt, task, _) in list(self.busy.items()):
            if task is not None:
                task.group.pool.cancel(task)
            self.dep.queue.hand_back(job, receipt)
            del self.busy[slot]
        self._gone()

    def _gone(self) -> None:
        self.state = "gone"
        self.gone_at = self.dep.sim.now

    # the metrics pipeline (cAdvisor -> metrics-server)
    def scrape(self, now: float, window: float) -> None:
        self.pool.sync()
        if self.state in ("pending", "gone"):
            return
        if self._last_scrape is not None and now - self._last_scrape >= window - 1e-9:
            self.metric = ((self.group.cpu_used - self._last_cpu) / (now - self._last_scrape), now)
        self._last_cpu, self._last_scrape = self.group.cpu_used, now


class Deployment:
    """The worker Deployment: `replicas` is what an autoscaler sets; pods
    follow. Scale-down removes not-yet-running pods first, then the newest
    (the ReplicaSet controller's preference)."""

    def __init__(self, sim: Sim, spec: PodSpec, queue: Queue, workload, replicas: int,
                 node_cores: float | None = None, shared_groups: dict[str, Group] | None = None,
                 pool: Pool | None = None):
        self.sim, self.spec, self.queue, self.workload = sim, spec, queue, workload
        self.shared_groups = shared_groups or {}
        # node_cores None: every pod gets its own node share up to its limit
        # (a cluster with room, e.g. one with a cluster autoscaler that has
        # already added nodes); a number: every pod on one node of that many cores.
        self._shared_pool = pool or (Pool(sim, node_cores) if node_cores else None)
        self.pods: list[Pod] = []
        self.completed: list[Job] = []
        self.replicas = 0
        self._names = itertools.count()
        self.scale_to(replicas)

    def pool_for_pod(self) -> Pool:
        return self._shared_pool or Pool(self.sim, self.spec.cpu_limit)

    def live(self) -> list[Pod]:
        return [p for p in self.pods if p.state not in ("terminating", "gone")]

    def scale_to(self, n: int) -> None:
        self.replicas = n
        live = self.live()
        for _ in range(n - len(live)):
            self.pods.append(Pod(self, next(self._names)))
        if len(live) > n:
            rank = {"pending": 0, "starting": 1, "running": 2}
            victims = sorted(live, key=lambda p: (rank[p.state], p.ready, -p.created))
            for p in victims[: len(live) - n]:
                p.terminate()

    def pod_seconds(self, until: float) -> float:
        return sum((p.gone_at if p.gone_at is not None else until) - p.created for p in self.pods)


# --------------------------------------------------------------------- workloads


@dataclass
class Workload:
    """Where a job's time goes. stage_fn(rng) returns [(kind, where, amount)]:
    ("wait", "", seconds) for a call to S3 whose CPU is elsewhere, ("cpu",
    "pod" | shared group name, core-seconds)."""

    stage_fn: Callable[[random.Random], list]
    notify_fn: Callable[[random.Random], list]  # upload complete -> message visible

    def stages(self, rng):
        return self.stage_fn(rng)


def run_stages(sim: Sim, stages: list, groups: dict[str, Group], then: Callable[[], None]) -> None:
    """Run stages outside a pod (the S3 event's trip, a client's PUT)."""
    if not stages:
        then()
        return
    (kind, where, amount), rest = stages[0], stages[1:]
    cont = lambda: run_stages(sim, rest, groups, then)  # noqa: E731
    if kind == "wait":
        sim.after(amount, cont)
    else:
        g = groups[where]
        g.pool.start(g, amount, cont)


class Cluster:
    """A queue, a Deployment and a way to feed it; records what an operator
    would graph."""

    def __init__(self, sim: Sim, dep: Deployment, sample_every: float = 5.0):
        self.sim, self.dep, self.queue = sim, dep, dep.queue
        self.jobs: list[Job] = []
        self.series: list[dict] = []
        self._ids = itertools.count()
        self.sample_every = sample_every
        sim.after(0, self._sample)

    def upload(self, on_done: Callable[[Job], None] | None = None) -> Job:
        """An object has landed in the inbox; its event goes to the queue."""
        job = Job(next(self._ids), self.sim.now, on_done=on_done)
        self.jobs.append(job)
        steps = self.dep.workload.notify_fn(self.sim.rng)
        run_stages(self.sim, steps, self.dep.shared_groups, lambda: self.queue.send(job))
        return job

    def _sample(self) -> None:
        pods = self.dep.pods
        self.series.append({
            "t": self.sim.now,
            "replicas": self.dep.replicas,
            "running": sum(p.state == "running" for p in pods),
            "ready": sum(p.ready for p in pods),
            "terminating": sum(p.state == "terminating" for p in pods),
            "visible": len(self.queue.visible),
            "in_flight": len(self.queue.in_flight),
        })
        self.sim.after(self.sample_every, self._sample)

    def unfinished(self) -> int:
        return sum(j.done is None for j in self.jobs)


# ---------------------------------------------------------------------- arrivals


def open_loop(sim: Sim, cluster: Cluster, rate: float, duration: float, start: float = 0.0,
              poisson: bool = True) -> None:
    """`rate` uploads per second for `duration` seconds."""
    def next_arrival(t_end: float) -> None:
        if sim.now >= t_end:
            return
        cluster.upload()
        gap = sim.rng.expovariate(rate) if poisson else 1.0 / rate
        sim.after(gap, next_arrival, t_end)

    sim.after(start, next_arrival, start + duration)


def burst(sim: Sim, cluster: Cluster, n: int, at: float) -> None:
    """n uploads landing at once (a batch import)."""
    def land() -> None:
        for _ in range(n):
            cluster.upload()

    sim.after(at, land)


# the old API's poll for the manifest: 20 ms, then x1.5 each time, at most 250 ms
# (src/api/mod.rs `poll`); the first check is immediate.
def poll_times(limit: float = 75.0) -> list[float]:
    out, t, every = [0.0], 0.0, 0.020
    while t < limit:
        t += every
        out.append(t)
        every = min(every * 1.5, 0.250)
    return out


POLL_TIMES = poll_times()


def answered_at(wait_start: float, job_done: float) -> tuple[float, int]:
    """When the old API's poll first sees the manifest, and how many polls it took."""
    import bisect

    i = bisect.bisect_left(POLL_TIMES, job_done - wait_start - 1e-12)
    if i >= len(POLL_TIMES):
        return job_done, len(POLL_TIMES)
    return wait_start + POLL_TIMES[i], i + 1


@dataclass
class OldApiUsers:
    """The paper's Base U: U users, each `rounds` times resize, watermark,
    filter (each a job the API waits for), then a GET; no think time.

    upload_fn / get_fn draw the API's own time for the upload and the GET;
    `sync` means the pod answers the request itself (the old Spring service)
    instead of the API polling the outbox."""

    sim: Sim
    cluster: Cluster
    users: int
    rounds: int
    upload_fn: Callable[[random.Random], float]
    get_fn: Callable[[random.Random], float]
    sync: bool = False
    post_latencies: list[tuple[float, float]] = field(default_factory=list)  # (answered at, latency)
    polls: int = 0
    finished_users: int = 0

    def start(self) -> None:
        for _ in range(self.users):
            self.sim.after(0, self._request, 0, 0)

    def _request(self, rnd: int, step: int) -> None:
        if rnd == self.rounds:
            self.finished_users += 1
            return
        sim = self.sim
        t0 = sim.now
        if step == 3:  # GET /api/images/{key}
            sim.after(self.get_fn(sim.rng), self._request, rnd + 1, 0)
            return

        def landed() -> None:
            wait_start = sim.now

            def done(job: Job) -> None:
                if self.sync:
                    at = job.done
                else:
                    at, n = answered_at(wait_start, job.done)
                    self.polls += n
                self.post_latencies.append((at, at - t0))
                sim.after(at - sim.now, self._request, rnd, step + 1)

            self.cluster.upload(on_done=done)

        sim.after(self.upload_fn(sim.rng), landed)

    def done(self) -> bool:
        return self.finished_users == self.users


# ----------------------------------------------------------------------- metrics


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)
