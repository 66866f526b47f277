"""The two autoscalers, as their documentation defines them.

Kubernetes HorizontalPodAutoscaler (autoscaling/v2):
  https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/
  - "Algorithm details": desiredReplicas = ceil(currentReplicas * currentMetricValue
    / desiredMetricValue); no change while the ratio is within the tolerance
    (0.1 by default, --horizontal-pod-autoscaler-tolerance); pods being deleted
    are ignored; pods missing metrics count as 0 % on a scale-up and 100 % of
    the target on a scale-down; for CPU, not-yet-ready pods are set aside and
    count as 0 % on a scale-up; if that changes the direction or brings the
    ratio inside the tolerance, nothing is done.
  - "Support for resource metrics" / readiness: --horizontal-pod-autoscaler-cpu-
    initialization-period (5 min) and --horizontal-pod-autoscaler-initial-
    readiness-delay (30 s).
  - "Configurable scaling behavior": stabilization windows (the highest
    recommendation of the window for scale-down, the lowest for scale-up),
    policies (Pods / Percent per periodSeconds, selectPolicy Max by default),
    and the default behavior when none is given.
  The order of those steps follows the controller's source as the docs
  describe it (replica_calculator.go groupPods / GetResourceReplicas, and
  horizontal.go normalizeDesiredReplicasWithBehaviors); the code below names
  each step.

KEDA aws-sqs-queue scaler (https://keda.sh/docs/latest/scalers/aws-sqs/) and
ScaledObject spec (https://keda.sh/docs/latest/reference/scaledobject-spec/):
  - metric = ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible
    (scaleOnInFlight true, the default); the HPA KEDA creates targets an
    AverageValue of queueLength per replica, so desired = ceil(metric / queueLength);
  - activationQueueLength (default 0): the scaler is active when metric > it;
  - pollingInterval: how often KEDA checks activity itself (the 0 <-> 1 step);
  - cooldownPeriod: how long after the last active check KEDA scales to 0
    (only when minReplicaCount is 0); 1 <-> N is the HPA's job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance default
CPU_INITIALIZATION_PERIOD = 300.0  # --horizontal-pod-autoscaler-cpu-initialization-period
INITIAL_READINESS_DELAY = 30.0  # --horizontal-pod-autoscaler-initial-readiness-delay


def within_tolerance(ratio: float, tolerance: float = TOLERANCE) -> bool:
    return abs(1.0 - ratio) <= tolerance


def hpa_desired(current: int, metric: float, target: float, tolerance: float = TOLERANCE) -> int:
    """The documented formula on its own: ceil(current * metric / target), or
    `current` while metric / target is within the tolerance."""
    ratio = metric / target
    if within_tolerance(ratio, tolerance):
        return current
    return math.ceil(current * ratio)


@dataclass
class PodSample:
    """What the HPA knows about one pod at a sync.

    usage: cores averaged over the metrics window (None: no metric yet);
    request: the pod's CPU request (cores); phase_pending: not yet running;
    start_time / ready_time: when the pod started and last became Ready
    (None: never); sample_time / window: the metric's timestamp and window."""

    usage: float | None
    request: float
    phase_pending: bool = False
    ready: bool = True
    start_time: float = -1e9
    ready_time: float | None = -1e9
    sample_time: float = 0.0
    window: float = 15.0
    deleting: bool = False


def hpa_cpu_replicas(
    pods: list[PodSample],
    current: int,
    target_utilization: float,
    now: float,
    tolerance: float = TOLERANCE,
) -> int:
    """GetResourceReplicas for a CPU Utilization target (a fraction, 0.7 = 70 %).

    Returns the metric's recommendation, before behavior and min/max."""
    # groupPods: sort every pod into ready (counted), unready, missing, ignored.
    ready: list[PodSample] = []
    unready: list[PodSample] = []
    missing: list[PodSample] = []
    for p in pods:
        if p.deleting:
            continue  # ignored
        if p.phase_pending:
            unready.append(p)
            continue
        if p.usage is None:
            missing.append(p)
            continue
        if p.ready_time is None:
            is_unready = True
        elif p.start_time + CPU_INITIALIZATION_PERIOD > now:
            # Inside the initialization period a sample counts only if the pod
            # is Ready and one whole window was measured after it became Ready:
            # this is what keeps a JVM's start-up burst out of the average.
            is_unready = (not p.ready) or p.sample_time < p.ready_time + p.window
        else:
            is_unready = (not p.ready) and p.start_time + INITIAL_READINESS_DELAY > p.ready_time
        (unready if is_unready else ready).append(p)

    if not ready:
        return current  # no usable metrics: the HPA does not act

    def ratio(samples: list[tuple[float, float]]) -> float:
        used = sum(u for u, _ in samples)
        requested = sum(r for _, r in samples)
        return (used / requested) / target_utilization

    samples = [(p.usage, p.request) for p in ready]
    usage_ratio = ratio(samples)
    scale_up_with_unready = bool(unready) and usage_ratio > 1.0
    if not scale_up_with_unready and not missing:
        if within_tolerance(usage_ratio, tolerance):
            return current
        return math.ceil(usage_ratio * len(ready))

    # Fill in the pods without a usable metric, pessimistically for the
    # direction the ready pods point to.
    if missing:
        if usage_ratio < 1.0:
            samples += [(p.request * target_utilization, p.request) for p in missing]
        elif usage_ratio > 1.0:
            samples += [(0.0, p.request) for p in missing]
    if scale_up_with_unready:
        samples += [(0.0, p.request) for p in unready]
    new_ratio = ratio(samples)
    if (
        within_tolerance(new_ratio, tolerance)
        or (usage_ratio < 1.0 and new_ratio > 1.0)
        or (usage_ratio > 1.0 and new_ratio < 1.0)
    ):
        return current
    new_replicas = math.ceil(new_ratio * len(samples))
    if (new_ratio < 1.0 and new_replicas > current) or (new_ratio > 1.0 and new_replicas < current):
        return current
    return new_replicas


def keda_sqs_metric(visible: int, in_flight: int, scale_on_in_flight: bool = True) -> int:
    return visible + (in_flight if scale_on_in_flight else 0)


def keda_desired(metric: float, queue_length: float, current: int, tolerance: float = TOLERANCE) -> int:
    """The HPA's answer for KEDA's External metric with an AverageValue target
    of queueLength: usage ratio = metric / (queueLength * current), and
    ceil(metric / queueLength) outside the tolerance."""
    if current == 0:
        return math.ceil(metric / queue_length)
    ratio = metric / (queue_length * current)
    if within_tolerance(ratio, tolerance):
        return current
    return math.ceil(metric / queue_length)


@dataclass
class Policy:
    kind: str  # "Pods" or "Percent"
    value: int
    period: float


@dataclass
class Rules:
    stabilization: float
    policies: list[Policy]
    select: str = "Max"


# The HPA's defaults when `behavior` (or one direction of it) is not given
# ("Default Behavior" in the HPA docs).
DEFAULT_SCALE_UP = Rules(0.0, [Policy("Percent", 100, 15), Policy("Pods", 4, 15)])
DEFAULT_SCALE_DOWN = Rules(300.0, [Policy("Percent", 100, 15)])


@dataclass
class Behavior:
    """Stabilization windows, then rate policies, then min/max: the steps of
    normalizeDesiredReplicasWithBehaviors."""

    min_replicas: int
    max_replicas: int
    up: Rules = field(default_factory=lambda: DEFAULT_SCALE_UP)
    down: Rules = field(default_factory=lambda: DEFAULT_SCALE_DOWN)
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    up_events: list[tuple[float, int]] = field(default_factory=list)
    down_events: list[tuple[float, int]] = field(default_factory=list)

    def normalize(self, now: float, current: int, desired: int) -> int:
        # Stabilization: the lowest recommendation of the up window bounds a
        # scale-up, the highest of the down window bounds a scale-down.
        up_rec = down_rec = desired
        for t, r in self.recommendations:
            if t > now - self.up.stabilization:
                up_rec = min(up_rec, r)
            if t > now - self.down.stabilization:
                down_rec = max(down_rec, r)
        self.recommendations.append((now, desired))
        horizon = max(self.up.stabilization, self.down.stabilization)
        self.recommendations = [(t, r) for t, r in self.recommendations if t > now - horizon]
        stabilized = current
        if stabilized < up_rec:
            stabilized = up_rec
        if stabilized > down_rec:
            stabilized = down_rec

        # Rate policies, measured from the replicas at the start of each period.
        if stabilized > current:
            limit = self._up_limit(now, current)
            limit = max(limit, current)
            stabilized = min(stabilized, limit, self.max_replicas)
        elif stabilized < current:
            limit = self._down_limit(now, current)
            limit = min(limit, current)
            stabilized = max(stabilized, limit, self.min_replicas)
        return max(self.min_replicas, min(self.max_replicas, stabilized))

    def _up_limit(self, now: float, current: int) -> int:
        pick = max if self.up.select == "Max" else min
        out = None
        for p in self.up.policies:
            added = sum(c for t, c in self.up_events if t > now - p.period)
            start = current - added
            proposed = start + p.value if p.kind == "Pods" else math.ceil(start * (1 + p.value / 100))
            out = proposed if out is None else pick(out, proposed)
        return out

    def _down_limit(self, now: float, current: int) -> int:
        # "Max" means the largest change, i.e. the fewest replicas left.
        pick = min if self.down.select == "Max" else max
        out = None
        for p in self.down.policies:
            removed = sum(c for t, c in self.down_events if t > now - p.period)
            start = current + removed
            proposed = start - p.value if p.kind == "Pods" else math.floor(start * (1 - p.value / 100))
            out = proposed if out is None else pick(out, proposed)
        return out

    def record(self, now: float, current: int, new: int) -> None:
        if new > current:
            self.up_events.append((now, new - current))
        elif new < current:
            self.down_events.append((now, current - new))
        keep = now - 3600
        self.up_events = [e for e in self.up_events if e[0] > keep]
        self.down_events = [e for e in self.down_events if e[0] > keep]


def imgflow_hpa_behavior(min_replicas: int = 1, max_replicas: int = 5) -> Behavior:
    """k8s/components/hpa/hpa.yaml: scale-up 2 pods / 30 s, no window;
    scale-down 1 pod / 60 s after a 300 s window."""
    return Behavior(
        min_replicas,
        max_replicas,
        up=Rules(0.0, [Policy("Pods", 2, 30)]),
        down=Rules(300.0, [Policy("Pods", 1, 60)]),
    )


def imgflow_keda_behavior(min_replicas: int = 1, max_replicas: int = 5) -> Behavior:
    """k8s/components/keda/scaledobject.yaml: the HPA KEDA creates keeps the
    default scale-up and gets scaleDown 1 pod / 60 s after 300 s. The HPA's
    minReplicas is max(minReplicaCount, 1): 0 is KEDA's own step."""
    return Behavior(
        max(1, min_replicas),
        max_replicas,
        up=DEFAULT_SCALE_UP,
        down=Rules(300.0, [Policy("Pods", 1, 60)]),
    )
