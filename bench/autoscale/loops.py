"""The control loops that run controllers.py's rules against a simulated Deployment."""

from __future__ import annotations

from controllers import Behavior, PodSample, hpa_cpu_replicas, keda_desired, keda_sqs_metric
from sim import Deployment, Sim

SYNC_PERIOD = 15.0  # --horizontal-pod-autoscaler-sync-period
METRIC_RESOLUTION = 15.0  # metrics-server --metric-resolution: a scrape, and the CPU rate's window


class CpuHpa:
    """An HPA on CPU Utilization of the pods' requests."""

    def __init__(self, sim: Sim, dep: Deployment, target: float, behavior: Behavior):
        self.sim, self.dep, self.target, self.behavior = sim, dep, target, behavior
        self.decisions: list[tuple[float, int, int]] = []  # (t, recommendation, replicas set)
        # The controller and the scraper are not in phase with the load.
        sim.after(sim.rng.uniform(0, METRIC_RESOLUTION), self._scrape)
        sim.after(sim.rng.uniform(0, SYNC_PERIOD), self._sync)

    def _scrape(self) -> None:
        for p in self.dep.pods:
            p.scrape(self.sim.now, METRIC_RESOLUTION)
        self.sim.after(METRIC_RESOLUTION, self._scrape)

    def _sync(self) -> None:
        now, dep = self.sim.now, self.dep
        current = dep.replicas
        if current > 0:
            samples = [
                PodSample(
                    usage=p.metric[0] if p.metric else None,
                    request=dep.spec.cpu_request,
                    phase_pending=p.state == "pending",
                    ready=p.ready,
                    start_time=p.start_time if p.start_time is not None else now,
                    ready_time=p.ready_time,
                    sample_time=p.metric[1] if p.metric else 0.0,
                    window=METRIC_RESOLUTION,
                )
                for p in dep.live()
            ]
            rec = hpa_cpu_replicas(samples, current, self.target, now)
            new = self.behavior.normalize(now, current, rec)
            self.decisions.append((now, rec, new))
            if new != current:
                self.behavior.record(now, current, new)
                dep.scale_to(new)
        self.sim.after(SYNC_PERIOD, self._sync)


class Keda:
    """A ScaledObject with one aws-sqs-queue trigger: KEDA's own loop for
    0 <-> 1 and the HPA it creates (External metric, AverageValue = queueLength)
    for 1 <-> N. The HPA asks KEDA's metrics server, which reads the queue
    when asked, so the HPA sees the depth at its own sync."""

    def __init__(self, sim: Sim, dep: Deployment, queue_length: float, min_replicas: int, max_replicas: int,
                 behavior: Behavior, polling_interval: float = 15.0, cooldown: float = 300.0,
                 activation: float = 0.0):
        self.sim, self.dep = sim, dep
        self.queue_length, self.min, self.max = queue_length, min_replicas, max_replicas
        self.behavior, self.polling, self.cooldown, self.activation = behavior, polling_interval, cooldown, activation
        self.last_active = 0.0
        self.decisions: list[tuple[float, int, int]] = []
        sim.after(sim.rng.uniform(0, polling_interval), self._poll)
        sim.after(sim.rng.uniform(0, SYNC_PERIOD), self._hpa_sync)

    def metric(self) -> int:
        q = self.dep.queue
        return keda_sqs_metric(len(q.visible), len(q.in_flight))

    def _poll(self) -> None:
        now, dep = self.sim.now, self.dep
        active = self.metric() > self.activation
        if active:
            self.last_active = now
            if dep.replicas == 0:
                dep.scale_to(1)  # activation: KEDA scales 0 -> 1, the HPA takes it from there
                self.decisions.append((now, 1, 1))
        elif self.min == 0 and dep.replicas > 0 and now - self.last_active >= self.cooldown:
            dep.scale_to(0)
            self.decisions.append((now, 0, 0))
        self.sim.after(self.polling, self._poll)

    def _hpa_sync(self) -> None:
        now, dep = self.sim.now, self.dep
        current = dep.replicas
        if current > 0:  # an HPA whose target is at 0 replicas does nothing
            rec = keda_desired(self.metric(), self.queue_length, current)
            new = self.behavior.normalize(now, current, rec)
            self.decisions.append((now, rec, new))
            if new != current:
                self.behavior.record(now, current, new)
                dep.scale_to(new)
        self.sim.after(SYNC_PERIOD, self._hpa_sync)
