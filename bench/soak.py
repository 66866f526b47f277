#!/usr/bin/env python3
"""imgflow soak run; started by bench/soak.sh, which owns the LocalStack.

Starts `imgflow api` and two `imgflow worker`s against the LocalStack given
by --endpoint, uploads N images through the presigned flow (10% poison),
kills worker-1 with SIGKILL three times and SIGSTOPs the LocalStack process
group twice while uploading, waits for every job to settle, and prints the
summary. Standard library, plus boto3 (from LocalStack's venv) to list the
outbox and read the DLQ directly.

Exit status: 0 all good; 1 lost > 0 (an upload without a final manifest);
3 nothing lost but another check failed (wrong status, bad or orphan
outputs, upload errors); 2 the harness itself could not run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

try:
    import boto3  # LocalStack's venv has it
    from botocore.config import Config as BotoConfig
except ImportError:  # pragma: no cover
    boto3 = None

RECIPE = "resize,w=64/jpeg"
# Longer than the pauses, so a PUT waits out a stopped LocalStack instead of
# being retried (a retry of a PUT that did land gets 412: URLs are single-use).
PUT_TIMEOUT = 120.0
T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[soak +{time.monotonic() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- HTTP


class HttpError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


def http(method: str, url: str, data: bytes | None = None, headers: dict | None = None,
         timeout: float = 30.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        raise HttpError(e.code, e.read().decode("utf-8", "replace")) from None


def retrying(fn, what: str, deadline_secs: float = 300.0):
    """Retry on connection errors, timeouts and 5xx (LocalStack may be paused); not on 4xx."""
    deadline = time.monotonic() + deadline_secs
    delay = 0.5
    while True:
        try:
            return fn()
        except HttpError as e:
            if e.status < 500 or time.monotonic() > deadline:
                raise
            err = e
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
            if time.monotonic() > deadline:
                raise
            err = e
        if os.environ.get("SOAK_DEBUG"):
            log(f"retrying {what}: {err}")
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


# ---------------------------------------------------------------- images


def jpeg_size(b: bytes) -> tuple[int, int] | None:
    """Width and height from a JPEG's SOF marker; None if it is not a complete JPEG."""
    if len(b) < 4 or b[:2] != b"\xff\xd8" or b[-2:] != b"\xff\xd9":
        return None
    i = 2
    while i + 4 <= len(b):
        if b[i] != 0xFF:
            return None
        m = b[i + 1]
        if m == 0xFF:
            i += 1
            continue
        if m in (0xD8, 0x01) or 0xD0 <= m <= 0xD7:
            i += 2
            continue
        seglen = int.from_bytes(b[i + 2:i + 4], "big")
        if m in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if i + 9 > len(b):
                return None
            h = int.from_bytes(b[i + 5:i + 7], "big")
            w = int.from_bytes(b[i + 7:i + 9], "big")
            return (w, h)
        i += 2 + seglen
    return None


@dataclass
class Good:
    name: str
    data: bytes
    content_type: str
    expected: tuple[int, int]


def load_fixtures(root: str, bin_: str, run_dir: str) -> list[Good]:
    """The good images, with the size `imgflow process` gives them under RECIPE."""
    fx = os.path.join(root, "tests", "fixtures")
    files = [f"orientation/orient-{i}.jpg" for i in range(1, 9)]
    files += ["orientation/orient-upright.png", "rocket.jpg", "rocket-cmyk.jpg", "chelsea.png"]
    goods = []
    for rel in files:
        path = os.path.join(fx, rel)
        out = os.path.join(run_dir, "tmp", "expected.jpg")
        subprocess.run([bin_, "process", path, "-o", out, "--recipe", RECIPE], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        with open(out, "rb") as f:
            size = jpeg_size(f.read())
        if size is None:
            raise SystemExit(f"soak: `imgflow process {rel}` did not give a JPEG")
        with open(path, "rb") as f:
            data = f.read()
        ct = "image/png" if rel.endswith(".png") else "image/jpeg"
        goods.append(Good(os.path.basename(rel), data, ct, size))
    return goods


def make_poison(rng: random.Random, goods: list[Good], root: str) -> tuple[str, bytes, str, str]:
    """(filename, bytes, declared content type, kind). Every kind must end as a failed manifest.

    Not included: truncated CMYK JPEGs (libjpeg-turbo hands CMYK to the `image`
    crate, which decodes a truncated file to a partly grey picture; see SOAK.md).
    """
    kind = rng.choice(["random", "jpeg-header-garbage", "truncated-jpeg", "truncated-png", "text"])
    if kind == "random":
        return "random.jpg", rng.randbytes(rng.randint(64, 16384)), "image/jpeg", kind
    if kind == "jpeg-header-garbage":
        body = b"\xff\xd8\xff\xe0" + rng.randbytes(rng.randint(64, 8192))
        return "garbage.jpg", body, "image/jpeg", kind
    if kind == "truncated-jpeg":
        src = rng.choice([g for g in goods if g.content_type == "image/jpeg" and "cmyk" not in g.name])
        cut = int(len(src.data) * rng.uniform(0.2, 0.9))
        return "truncated-" + src.name, src.data[:cut], "image/jpeg", kind
    if kind == "truncated-png":
        src = rng.choice([g for g in goods if g.content_type == "image/png"])
        cut = int(len(src.data) * rng.uniform(0.2, 0.9))
        return "truncated-" + src.name, src.data[:cut], "image/png", kind
    with open(os.path.join(root, "tests", "fixtures", "not-an-image.txt"), "rb") as f:
        return "not-an-image.png", f.read(), "image/png", kind


# ---------------------------------------------------------------- processes


class Procs:
    """imgflow processes, each in its own session, logs appended under logs/."""

    def __init__(self, run_dir: str, bin_: str, env: dict):
        self.run_dir, self.bin, self.env = run_dir, bin_, env
        self.procs: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        logf = open(os.path.join(self.run_dir, "logs", f"{name}.log"), "ab")
        p = subprocess.Popen([self.bin, *args], env=self.env, stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        with self.lock:
            self.procs[name] = p
        with open(os.path.join(self.run_dir, "pids", f"{name}.pid"), "w") as f:
            f.write(str(p.pid))
        return p

    def kill9(self, name: str) -> int:
        with self.lock:
            p = self.procs[name]
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        return p.pid

    def check_alive(self) -> list[str]:
        with self.lock:
            return [f"{n} (exit {p.returncode})" for n, p in self.procs.items() if p.poll() is not None]

    def stop_all(self) -> None:
        with self.lock:
            procs = list(self.procs.items())
        for _, p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 35
        for name, p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{name} did not exit after SIGTERM; SIGKILL")
                p.kill()
                p.wait()
            try:
                os.remove(os.path.join(self.run_dir, "pids", f"{name}.pid"))
            except FileNotFoundError:
                pass


# ---------------------------------------------------------------- the run


@dataclass
class Job:
    index: int
    poison: bool
    filename: str
    content_type: str
    data: bytes
    expected: tuple[int, int] | None
    kind: str
    job_id: str | None = None
    key: str | None = None
    uploaded: bool = False
    upload_error: str | None = None
    put_412_after_retry: bool = False
    status: str = "pending"
    answer: dict = field(default_factory=dict)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--localstack-pgid", type=int, required=True)
    ap.add_argument("--api-port", type=int, default=18080)
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--poison-pct", type=float, default=10.0)
    ap.add_argument("--pause-secs", type=float, default=25.0)
    ap.add_argument("--wait-secs", type=float, default=600.0)
    ap.add_argument("--stall-secs", type=float, default=180.0)
    ap.add_argument("--uploaders", type=int, default=8)
    ap.add_argument("--upload-secs", type=float, default=180.0,
                    help="spread the uploads over this long, so the chaos happens while they flow")
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    if boto3 is None:
        print("soak: boto3 is missing; run soak.py with .localstack/venv/bin/python", file=sys.stderr)
        return 2

    seed = a.seed if a.seed is not None else random.randrange(1 << 31)
    rng = random.Random(seed)
    tag = f"soak-{uuid.uuid4().hex[:8]}"
    api = f"http://127.0.0.1:{a.api_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IMGFLOW_"))}
    env.update({
        "AWS_ENDPOINT_URL": a.endpoint, "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "IMGFLOW_INBOX": f"{tag}-inbox", "IMGFLOW_OUTBOX": f"{tag}-outbox", "IMGFLOW_QUEUE": f"{tag}-jobs",
        "IMGFLOW_LISTEN": f"127.0.0.1:{a.api_port}", "IMGFLOW_POLL_WAIT": "2", "IMGFLOW_WORKER_LISTEN": "127.0.0.1:0",
        "IMGFLOW_LOG_FORMAT": "json", "RUST_LOG": os.environ.get("SOAK_RUST_LOG", "info"),
    })
    boto = dict(endpoint_url=a.endpoint, region_name="us-east-1", aws_access_key_id="test",
                aws_secret_access_key="test",
                config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 10},
                                  connect_timeout=5, read_timeout=30))
    s3 = boto3.client("s3", **boto)
    sqs = boto3.client("sqs", **boto)

    log(f"seed {seed}, resources {tag}-*, endpoint {a.endpoint}, api {api}")
    goods = load_fixtures(a.root, a.bin, a.run_dir)

    # The plan: N uploads, poison_pct of them poison, in a shuffled order.
    n_poison = round(a.n * a.poison_pct / 100)
    flags = [True] * n_poison + [False] * (a.n - n_poison)
    rng.shuffle(flags)
    jobs: list[Job] = []
    for i, poison in enumerate(flags):
        if poison:
            fn, data, ct, kind = make_poison(rng, goods, a.root)
            jobs.append(Job(i, True, fn, ct, data, None, kind))
        else:
            g = rng.choice(goods)
            jobs.append(Job(i, False, g.name, g.content_type, g.data, g.expected, "good"))

    setup = subprocess.run([a.bin, "setup", "--visibility-timeout-secs", "10"], env=env,
                           capture_output=True, text=True)
    with open(os.path.join(a.run_dir, "logs", "setup.log"), "w") as f:
        f.write(setup.stdout + setup.stderr)
    if setup.returncode != 0:
        print(setup.stdout + setup.stderr, file=sys.stderr)
        return 2
    queue_url = sqs.get_queue_url(QueueName=f"{tag}-jobs")["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=f"{tag}-jobs-dlq")["QueueUrl"]

    procs = Procs(a.run_dir, a.bin, env)
    events: list[str] = []

    def event(msg: str) -> None:
        events.append(f"t+{time.monotonic() - T0:6.1f}s {msg}")
        log(msg)

    try:
        procs.start("api", ["api"])
        procs.start("worker-1", ["worker"])
        procs.start("worker-2", ["worker"])
        retrying(lambda: http("GET", f"{api}/readyz", timeout=5), "readyz", 60)
        log("api ready, 2 workers started")

        # ------------------------------------------------------------ uploads + chaos
        uploaded = 0
        up_lock = threading.Lock()
        progress = threading.Condition(up_lock)
        paused = threading.Event()

        def upload(job: Job) -> None:
            nonlocal uploaded
            time.sleep(max(0.0, t_up + job.index * a.upload_secs / a.n - time.monotonic()))
            try:
                body = json.dumps({"filename": job.filename, "content_type": job.content_type,
                                   "size": len(job.data), "recipe": RECIPE}).encode()
                _, raw = retrying(lambda: http("POST", f"{api}/v1/uploads", body,
                                               {"content-type": "application/json"}), "POST /v1/uploads")
                ans = json.loads(raw)
                job.job_id, job.key = ans["job_id"], ans["key"]
                assert ans["method"] == "PUT", ans
                # Exactly `headers`; urllib sets Content-Length itself from the body.
                hdrs = {k: v for k, v in ans["headers"].items() if k.lower() not in ("content-length", "host")}
                attempts = 0

                def put() -> None:
                    nonlocal attempts
                    attempts += 1
                    try:
                        http("PUT", ans["upload_url"], job.data, hdrs, timeout=PUT_TIMEOUT)
                    except HttpError as e:
                        # Upload URLs are single-use (If-None-Match: *): a 412 on a retry
                        # means an earlier attempt landed after the client gave up on it.
                        if e.status == 412 and attempts > 1:
                            job.put_412_after_retry = True
                            return
                        raise

                retrying(put, "PUT upload")
                job.uploaded = True
            except Exception as e:  # noqa: BLE001 - recorded and reported
                job.upload_error = f"{type(e).__name__}: {e}"
                log(f"upload {job.index} failed: {job.upload_error}")
            with progress:
                uploaded += 1
                progress.notify_all()

        def wait_uploaded(frac: float) -> None:
            with progress:
                progress.wait_for(lambda: uploaded >= int(a.n * frac))

        def chaos() -> None:
            plan = [(0.10, "kill"), (0.25, "pause"), (0.40, "kill"), (0.55, "pause"), (0.70, "kill")]
            for frac, what in plan:
                wait_uploaded(frac)
                if what == "kill":
                    # Kill while jobs are in flight (waiting at most 10 s for some).
                    in_flight = "?"
                    for _ in range(20):
                        try:
                            in_flight = sqs.get_queue_attributes(
                                QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
                            )["Attributes"]["ApproximateNumberOfMessagesNotVisible"]
                        except Exception:  # noqa: BLE001 - only for the log line
                            break
                        if int(in_flight) > 0:
                            break
                        time.sleep(0.5)
                    pid = procs.kill9("worker-1")
                    event(f"kill -9 worker-1 (pid {pid}) at {uploaded} uploads, {in_flight} messages in flight")
                    time.sleep(1.0)
                    p = procs.start("worker-1", ["worker"])
                    event(f"restarted worker-1 (pid {p.pid})")
                else:
                    os.killpg(a.localstack_pgid, signal.SIGSTOP)
                    paused.set()
                    event(f"SIGSTOP LocalStack (pgid {a.localstack_pgid}) at {uploaded} uploads")
                    time.sleep(a.pause_secs)
                    os.killpg(a.localstack_pgid, signal.SIGCONT)
                    paused.clear()
                    event(f"SIGCONT LocalStack after {a.pause_secs:.0f} s")

        t_up = time.monotonic()
        chaos_thread = threading.Thread(target=chaos, daemon=True)
        chaos_thread.start()
        with ThreadPoolExecutor(a.uploaders) as pool:
            for done_i, _ in enumerate(pool.map(upload, jobs), 1):
                if done_i % 200 == 0:
                    log(f"{done_i}/{a.n} uploads")
        up_secs = time.monotonic() - t_up
        log(f"uploads finished in {up_secs:.0f} s; waiting for chaos to end")
        chaos_thread.join()

        # ------------------------------------------------------------ settle
        pending = [j for j in jobs if j.uploaded]

        def poll(job: Job) -> None:
            try:
                _, raw = http("GET", f"{api}/v1/jobs/{job.job_id}", timeout=20)
                job.answer = json.loads(raw)
                job.status = job.answer.get("status", "pending")
            except Exception as e:  # noqa: BLE001 - try again next round
                if os.environ.get("SOAK_DEBUG"):
                    log(f"poll {job.job_id}: {e}")

        def queue_depth(url: str) -> int:
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"])["Attributes"]
            return sum(int(v) for v in attrs.values())

        t_wait = time.monotonic()
        last_change = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            while pending:
                list(pool.map(poll, pending))
                still = [j for j in pending if j.status not in ("done", "failed")]
                if len(still) != len(pending):
                    last_change = time.monotonic()
                pending = still
                dead = procs.check_alive()
                depth = queue_depth(queue_url)
                log(f"settling: {len(pending)} pending, queue holds {depth}, dlq {queue_depth(dlq_url)}"
                    + (f"; exited: {dead}" if dead else ""))
                if not pending:
                    break
                if time.monotonic() - t_wait > a.wait_secs:
                    log(f"giving up after {a.wait_secs:.0f} s")
                    break
                if time.monotonic() - last_change > a.stall_secs:
                    log(f"no progress for {a.stall_secs:.0f} s; stopping")
                    break
                if depth == 0 and time.monotonic() - last_change > 30:
                    log("queue empty and no progress for 30 s; stopping")
                    break
                time.sleep(5)
        settle_secs = time.monotonic() - t_wait

        # ------------------------------------------------------------ checks
        log("checking outputs")
        bad_outputs: list[str] = []
        wrong_status: list[str] = []
        codes: collections.Counter = collections.Counter()

        def check(job: Job) -> None:
            ans = job.answer
            if job.status == "failed":
                codes[(ans.get("error") or {}).get("code", "?")] += 1
            if job.status not in ("done", "failed"):
                return
            if job.poison and job.status != "failed":
                wrong_status.append(f"poison {job.kind} {job.job_id} is {job.status}: {ans}")
                return
            if not job.poison and job.status != "done":
                wrong_status.append(f"good {job.filename} {job.job_id} is {job.status}: {ans.get('error')}")
                return
            if job.poison:
                if ans.get("outputs"):
                    bad_outputs.append(f"failed job {job.job_id} lists outputs {ans['outputs']}")
                return
            outs = ans.get("outputs") or []
            if len(outs) != 1 or outs[0].get("name") != "main":
                bad_outputs.append(f"{job.job_id}: outputs {outs}")
                return
            o = outs[0]
            if (o.get("width"), o.get("height")) != job.expected:
                bad_outputs.append(f"{job.job_id}: manifest says {o.get('width')}x{o.get('height')}, "
                                   f"expected {job.expected}")
                return
            try:
                _, body = retrying(lambda: http("GET", o["url"], timeout=30), "GET output", 60)
            except Exception as e:  # noqa: BLE001
                bad_outputs.append(f"{job.job_id}: output download failed: {e}")
                return
            size = jpeg_size(body)
            if size != job.expected or len(body) != o.get("bytes"):
                bad_outputs.append(f"{job.job_id}: output is {size} and {len(body)} bytes; "
                                   f"expected {job.expected} and {o.get('bytes')} bytes")

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(check, jobs))

        # The outbox as S3 sees it: every folder with objects should have a manifest.
        folders: dict[str, set[str]] = collections.defaultdict(set)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=f"{tag}-outbox"):
            for obj in page.get("Contents", []):
                folder, _, leaf = obj["Key"].rpartition("/")
                folders[folder].add(leaf)
        by_key = {j.key: j for j in jobs if j.key}
        orphans = sorted(f for f, leaves in folders.items() if "manifest.json" not in leaves)
        unknown = sorted(f for f in folders if f not in by_key)
        failed_with_files = sorted(
            f for f, leaves in folders.items()
            if f in by_key and by_key[f].status == "failed" and leaves - {"manifest.json"})

        # The DLQ: count it, and name the jobs its messages are for (reads them; the run is over).
        dlq_count = queue_depth(dlq_url)
        dlq_keys: set[str] = set()
        for _ in range(20):
            msgs = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                       WaitTimeSeconds=1).get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                try:
                    for rec in json.loads(m["Body"]).get("Records", []):
                        dlq_keys.add(urllib.parse.unquote_plus(rec["s3"]["object"]["key"]))
                except Exception:  # noqa: BLE001
                    dlq_keys.add("<not an S3 event>")
        dlq_list = subprocess.run([a.bin, "dlq", "list"], env=env, capture_output=True, text=True)
        with open(os.path.join(a.run_dir, "logs", "dlq-list.log"), "w") as f:
            f.write(dlq_list.stdout + dlq_list.stderr)

        # How many jobs ran more than once (after kills and pauses): harmless by design.
        finished = collections.Counter()
        for name in os.listdir(os.path.join(a.run_dir, "logs")):
            if not name.startswith("worker-"):
                continue
            with open(os.path.join(a.run_dir, "logs", name), errors="replace") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    fields_ = rec.get("fields", {})
                    if fields_.get("message") == "job finished":
                        finished[fields_.get("key")] += 1
        reran = sum(1 for c in finished.values() if c > 1)
        dead = procs.check_alive()
    finally:
        procs.stop_all()

    # ------------------------------------------------------------ summary
    up = [j for j in jobs if j.uploaded]
    good_up = [j for j in up if not j.poison]
    poison_up = [j for j in up if j.poison]
    done = [j for j in up if j.status == "done"]
    failed = [j for j in up if j.status == "failed"]
    lost = [j for j in up if j.status not in ("done", "failed")]
    lost_in_dlq = [j for j in lost if j.key in dlq_keys]
    upload_errors = [j for j in jobs if not j.uploaded]
    duplicates = len(bad_outputs) + len(orphans) + len(failed_with_files) + len(unknown)
    good_ok = all(j.status == "done" for j in good_up)
    poison_ok = all(j.status == "failed" for j in poison_up)
    total = time.monotonic() - T0

    w = 20
    lines = [
        f"soak summary: N={a.n}, seed {seed}, {total:.0f} s total "
        f"(uploads {up_secs:.0f} s, settling {settle_secs:.0f} s)",
        f"{'uploads':<{w}}{len(up):>6}  ({len(good_up)} good, {len(poison_up)} poison; "
        f"{len(upload_errors)} upload errors, "
        f"{sum(j.put_412_after_retry for j in jobs)} PUTs retried after a time-out that had landed)",
        f"{'manifests done':<{w}}{len(done):>6}  (every good upload done: {'yes' if good_ok else 'NO'})",
        f"{'manifests failed':<{w}}{len(failed):>6}  (every poison upload failed: {'yes' if poison_ok else 'NO'}; "
        + ", ".join(f"{c} {k}" for k, c in sorted(codes.items())) + ")",
        f"{'DLQ count':<{w}}{dlq_count:>6}",
        f"{'duplicates':<{w}}{duplicates:>6}  (outputs not as expected {len(bad_outputs)}, outputs without "
        f"manifest {len(orphans)}, failed with outputs {len(failed_with_files)}, unknown folders {len(unknown)})",
        f"{'lost':<{w}}{len(lost):>6}  (no final manifest; {len(lost_in_dlq)} of them in the DLQ)",
        f"{'ran more than once':<{w}}{reran:>6}  (jobs finished by more than one run; harmless by design)",
        "chaos:",
        *(f"  {e}" for e in events),
    ]
    if dead:
        lines.append(f"processes that had exited before the end: {dead}")
    details = []
    for title, items in [("upload errors", [f"{j.index} {j.filename}: {j.upload_error}" for j in upload_errors]),
                         ("wrong status", wrong_status), ("outputs not as expected", bad_outputs),
                         ("outputs without manifest", orphans), ("failed with outputs", failed_with_files),
                         ("unknown folders", unknown),
                         ("lost", [f"{j.job_id} {j.key} ({'poison ' + j.kind if j.poison else 'good'})"
                                   f"{' [in DLQ]' if j.key in dlq_keys else ''}" for j in lost])]:
        if items:
            details.append(f"{title} ({len(items)}):")
            details += [f"  {x}" for x in items[:20]]
            if len(items) > 20:
                details.append(f"  ... {len(items) - 20} more")
    report = "\n".join(lines + details)
    print(report, flush=True)
    with open(os.path.join(a.run_dir, "summary.txt"), "w") as f:
        f.write(report + "\n")

    if lost:
        return 1
    if wrong_status or duplicates or upload_errors:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
