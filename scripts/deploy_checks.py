"""Rules for the rendered Kubernetes manifests that no schema expresses.

    python scripts/deploy_checks.py k8s RENDERED.yaml VALIDATE_OUTPUT.txt   one rendered overlay
    python scripts/deploy_checks.py dashboard DASHBOARD.json               the Grafana dashboard

Run by scripts/deploy-checks.sh with its venv's Python (PyYAML, jsonschema).
Each violated rule is printed; the exit code is the number of violations.
"""

import json
import pathlib
import re
import sys

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
KEDA_SCHEMA = ROOT / "k8s" / "schemas" / "keda.json"


def k8s(rendered: str, validate_output: str) -> list[str]:
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    problems = []

    # kubernetes-validate exits 0 when it has no schema for a kind: only KEDA's
    # CRDs may be unknown to it, and they have a schema of their own here.
    for line in open(validate_output):
        if "Couldn't find schema" in line and "keda.sh/" not in line:
            problems.append(line.strip())
    schema = json.load(open(KEDA_SCHEMA))
    for doc in docs:
        if doc.get("apiVersion", "").startswith("keda.sh/"):
            # Against its kind's definition, so errors name the field, not "oneOf".
            kind = {"$ref": f"#/$defs/{doc['kind']}", "$defs": schema["$defs"]}
            for error in jsonschema.Draft202012Validator(kind).iter_errors(doc):
                where = "/".join(map(str, error.absolute_path))
                problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {where}: {error.message}")

    # Never two autoscalers on one workload.
    hpa = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    scaled = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "ScaledObject"}
    for name in hpa & scaled:
        problems.append(f"{name}: scaled by both an HPA and a KEDA ScaledObject")

    for doc in docs:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        pod = doc["spec"]["template"]["spec"]
        for c in pod["containers"]:
            if ":" not in c["image"].rsplit("/", 1)[-1] or c["image"].endswith(":latest"):
                problems.append(f"{name}: image {c['image']} is not pinned to a version")
        if not any(c["image"].split(":")[0].endswith("imgflow") for c in pod["containers"]):
            continue  # LocalStack (development overlay only) is not held to these
        problems += imgflow_pod(name, doc["kind"], pod)
    return problems


def imgflow_pod(name: str, kind: str, pod: dict) -> list[str]:
    problems = []
    sc = pod.get("securityContext", {})
    if sc.get("runAsNonRoot") is not True:
        problems.append(f"{name}: pod securityContext.runAsNonRoot is not true")
    if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{name}: pod seccompProfile is not RuntimeDefault")
    for c in pod["containers"]:
        csc = c.get("securityContext", {})
        if csc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}/{c['name']}: allowPrivilegeEscalation is not false")
        if csc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}/{c['name']}: readOnlyRootFilesystem is not true")
        if csc.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{name}/{c['name']}: capabilities are not dropped")
        res = c.get("resources", {})
        for want in ("requests.cpu", "requests.memory", "limits.memory"):
            section, key = want.split(".")
            if key not in res.get(section, {}):
                problems.append(f"{name}/{c['name']}: no resources.{want}")
        env = {e["name"]: e for e in c.get("env", [])}
        key = env.get("IMGFLOW_API_KEY_SHA256")
        if key is not None and "valueFrom" not in key:
            problems.append(f"{name}/{c['name']}: IMGFLOW_API_KEY_SHA256 must come from a Secret")
        if kind == "Deployment":
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in c:
                    problems.append(f"{name}/{c['name']}: no {probe}")
        if "IMGFLOW_SHUTDOWN_GRACE" in env:
            # Kubernetes must not SIGKILL a worker still inside its own grace period.
            grace = int(env["IMGFLOW_SHUTDOWN_GRACE"]["value"])
            pod_grace = pod.get("terminationGracePeriodSeconds", 30)
            if pod_grace < grace + 10:
                problems.append(
                    f"{name}: terminationGracePeriodSeconds {pod_grace} is not above "
                    f"IMGFLOW_SHUTDOWN_GRACE {grace} + 10 s to hand jobs back"
                )
    return problems


def dashboard(path: str) -> list[str]:
    """Every metric the dashboard queries is one the code defines."""
    dash = json.load(open(path))
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    used = {re.sub(r"_(bucket|sum|count)$", "", m) for e in exprs for m in re.findall(r"\bimgflow_[a-z_]+", e)}
    source = "\n".join(p.read_text() for p in (ROOT / "src").rglob("*.rs"))
    problems = []
    if '"imgflow_' not in source:
        print(f"  note: src/ defines no metrics yet; {len(used)} used by the dashboard not checked")
    else:
        problems += [f"{path}: metric {m} is not defined anywhere in src/" for m in sorted(used) if f'"{m}"' not in source]
    for p in dash["panels"]:
        if p.get("datasource", {}).get("uid") != "prometheus":
            problems.append(f"{path}: panel {p['title']!r} does not use the provisioned Prometheus")
    return problems


if __name__ == "__main__":
    found = k8s(sys.argv[2], sys.argv[3]) if sys.argv[1] == "k8s" else dashboard(sys.argv[2])
    for problem in found:
        print(f"  FAIL {problem}")
    sys.exit(min(len(found), 100))
