"""The simulator's own tests: `python3 -m unittest discover bench/autoscale`
(stdlib only, no venv needed). Hand-computed cases for the HPA and KEDA
rules, and conservation of jobs through the simulated queue."""

import math
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from controllers import (Behavior, PodSample, Policy, Rules, hpa_cpu_replicas, hpa_desired,  # noqa: E402
                         imgflow_hpa_behavior, imgflow_keda_behavior, keda_desired, keda_sqs_metric)
from sim import Cluster, Deployment, PodSpec, Queue, Sim, Workload, answered_at, burst, open_loop  # noqa: E402
from loops import CpuHpa, Keda  # noqa: E402


class HpaFormula(unittest.TestCase):
    def test_docs_example(self):
        # HPA docs: current 200m, target 100m -> double; 50m -> halve.
        self.assertEqual(hpa_desired(1, 200, 100), 2)
        self.assertEqual(hpa_desired(4, 50, 100), 2)

    def test_ceil(self):
        # 3 pods at 90 % against 70 %: 3 * 90 / 70 = 3.857 -> 4
        self.assertEqual(hpa_desired(3, 0.90, 0.70), 4)
        # 5 pods at 20 % against 50 %: 5 * 0.4 = 2
        self.assertEqual(hpa_desired(5, 0.20, 0.50), 2)

    def test_tolerance(self):
        # ratios 1.086 and 0.914 are inside the 10 % tolerance, 1.11 is not
        self.assertEqual(hpa_desired(10, 0.76, 0.70), 10)
        self.assertEqual(hpa_desired(10, 0.64, 0.70), 10)
        self.assertEqual(hpa_desired(10, 0.777, 0.70), 12)  # 1.11 -> ceil(11.1)

    def test_cpu_ready_pods(self):
        pods = [PodSample(usage=1.4, request=1.0), PodSample(usage=0.7, request=1.0)]
        # average 105 % of request vs 70 %: ratio 1.5 -> ceil(2 * 1.5) = 3
        self.assertEqual(hpa_cpu_replicas(pods, 2, 0.70, now=1000), 3)

    def test_unready_pods_count_zero_on_scale_up(self):
        ready = PodSample(usage=1.4, request=1.0)
        starting = PodSample(usage=None, request=1.0, phase_pending=True)
        # ready alone: ratio 2.0; with the pending pod at 0: (1.4 / 2) / 0.7 = 1.0
        # -> within tolerance -> no change
        self.assertEqual(hpa_cpu_replicas([ready, starting], 2, 0.70, now=1000), 2)
        ready = PodSample(usage=2.0, request=1.0)
        # (2.0 / 2) / 0.7 = 1.4286 -> ceil(1.4286 * 2) = 3
        self.assertEqual(hpa_cpu_replicas([ready, starting], 2, 0.70, now=1000), 3)

    def test_missing_metrics_on_scale_down_count_as_target(self):
        low = PodSample(usage=0.1, request=1.0)
        new = PodSample(usage=None, request=1.0)
        # ready: 0.1 / 0.7 = 0.143 -> down; the missing pod counts as 70 %:
        # (0.1 + 0.7) / 2 / 0.7 = 0.571 -> ceil(0.571 * 2) = 2 = current -> no change
        self.assertEqual(hpa_cpu_replicas([low, new], 2, 0.70, now=1000), 2)

    def test_initialization_period_sets_aside_early_samples(self):
        # a pod 60 s old whose sample window started before it became Ready
        # (its start-up burst) is set aside: only the other pod counts.
        steady = PodSample(usage=0.7, request=1.0, start_time=0)
        booting = PodSample(usage=1.0, request=1.0, start_time=940, ready_time=990, sample_time=1000, window=15)
        self.assertEqual(hpa_cpu_replicas([steady, booting], 2, 0.70, now=1000), 2)

    def test_deleting_pods_ignored(self):
        pods = [PodSample(usage=0.7, request=1.0), PodSample(usage=2.0, request=1.0, deleting=True)]
        self.assertEqual(hpa_cpu_replicas(pods, 1, 0.70, now=1000), 1)


class Behaviors(unittest.TestCase):
    def test_scale_up_policy_pods_per_period(self):
        b = imgflow_hpa_behavior(1, 5)  # 2 pods / 30 s
        self.assertEqual(b.normalize(0, 1, 5), 3)
        b.record(0, 1, 3)
        self.assertEqual(b.normalize(15, 3, 5), 3)  # still inside the 30 s period
        self.assertEqual(b.normalize(31, 3, 5), 5)

    def test_scale_down_window_and_policy(self):
        b = imgflow_hpa_behavior(1, 5)  # 300 s window, 1 pod / 60 s
        b.normalize(0, 5, 5)
        self.assertEqual(b.normalize(100, 5, 1), 5)  # 5 was recommended within 300 s
        self.assertEqual(b.normalize(301, 5, 1), 4)  # window past; one pod per minute
        b.record(301, 5, 4)
        self.assertEqual(b.normalize(320, 4, 1), 4)
        self.assertEqual(b.normalize(362, 4, 1), 3)

    def test_default_scale_up(self):
        b = Behavior(1, 20)  # max(100 %, 4 pods) per 15 s
        self.assertEqual(b.normalize(0, 1, 20), 5)
        self.assertEqual(b.normalize(0, 10, 40), 20)

    def test_min_max(self):
        b = Behavior(2, 10, up=Rules(0, [Policy("Percent", 1000, 15)]))
        self.assertEqual(b.normalize(0, 2, 50), 10)


class KedaFormula(unittest.TestCase):
    def test_metric(self):
        self.assertEqual(keda_sqs_metric(25, 5), 30)
        self.assertEqual(keda_sqs_metric(25, 5, scale_on_in_flight=False), 25)

    def test_docs_example(self):
        # KEDA docs: queueLength 10, 30 messages -> 3 pods
        self.assertEqual(keda_desired(30, 10, 1), 3)

    def test_ceil_and_tolerance(self):
        self.assertEqual(keda_desired(31, 10, 1), 4)
        # 3 pods, 32 messages: 32 / 30 = 1.067 inside the tolerance
        self.assertEqual(keda_desired(32, 10, 3), 3)
        self.assertEqual(keda_desired(0, 10, 3), 0)  # then min replicas applies

    def test_keda_hpa_min_is_at_least_one(self):
        self.assertEqual(imgflow_keda_behavior(0, 5).min_replicas, 1)


def simple_workload(cpu=0.05):
    return Workload(lambda rng: [("wait", "", 0.005), ("cpu", "pod", cpu), ("wait", "", 0.005)],
                    lambda rng: [("wait", "", 0.002)])


class Conservation(unittest.TestCase):
    def check(self, cluster: Cluster, sent_min: int):
        done = sum(j.done is not None for j in cluster.jobs)
        q = cluster.queue
        busy = sum(len(p.busy) for p in cluster.dep.pods)
        # every arrival is done, visible, in flight, or on its way to the queue
        in_transit = len(cluster.jobs) - q.sent
        self.assertEqual(done + len(q.visible) + len(q.in_flight) + in_transit, len(cluster.jobs))
        self.assertLessEqual(len(q.in_flight), busy + q.redelivered)
        self.assertGreaterEqual(len(cluster.jobs), sent_min)

    def test_fixed_pods_finish_everything(self):
        sim = Sim(1)
        dep = Deployment(sim, PodSpec(), Queue(sim), simple_workload(), 2)
        cl = Cluster(sim, dep)
        burst(sim, cl, 500, 1.0)
        open_loop(sim, cl, 10, 30)
        sim.run(until=20)
        self.check(cl, 500)
        sim.run(until=600)
        self.check(cl, 500)
        self.assertEqual(cl.unfinished(), 0)
        self.assertEqual(len(dep.completed), len(cl.jobs))

    def test_scale_down_hands_back_and_nothing_is_lost(self):
        sim = Sim(2)
        # jobs of 60 s CPU: longer than the 45 s grace, so a scale-down must hand them back
        dep = Deployment(sim, PodSpec(), Queue(sim), simple_workload(cpu=60.0), 3)
        cl = Cluster(sim, dep)
        burst(sim, cl, 12, 1.0)
        sim.after(10, dep.scale_to, 1)
        for t in (11, 50, 57, 200):
            sim.run(until=t)
            self.check(cl, 12)
        sim.run(until=2000)
        self.check(cl, 12)
        self.assertEqual(cl.unfinished(), 0)
        self.assertEqual(sum(p.state == "gone" for p in dep.pods), 2)

    def test_autoscaled_runs_conserve(self):
        for scaler in ("hpa", "keda"):
            sim = Sim(3)
            dep = Deployment(sim, PodSpec(), Queue(sim), simple_workload(0.2), 1)
            cl = Cluster(sim, dep)
            if scaler == "hpa":
                CpuHpa(sim, dep, 0.7, imgflow_hpa_behavior(1, 5))
            else:
                Keda(sim, dep, 10, 0, 5, imgflow_keda_behavior(0, 5))
            open_loop(sim, cl, 15, 300)
            burst(sim, cl, 1000, 400)
            for t in range(50, 1500, 50):
                sim.run(until=t)
                self.check(cl, 1)
            sim.run(until=4000)
            self.assertEqual(cl.unfinished(), 0, scaler)
            self.assertGreater(max(r["replicas"] for r in cl.series), 1, scaler)


class OldApiPoll(unittest.TestCase):
    def test_poll_schedule(self):
        # checks at 0, 20, 50, 95 ms ...: a job done at 30 ms is seen at 50 ms, on the 3rd check
        at, n = answered_at(0.0, 0.030)
        self.assertAlmostEqual(at, 0.050)
        self.assertEqual(n, 3)
        at, n = answered_at(1.0, 1.0)
        self.assertEqual((at, n), (1.0, 1))


if __name__ == "__main__":
    unittest.main()
