"""Acceptance tests in headless Chromium (started by scripts/browser-tests.sh).

Environment: API (the API's base URL), API_KEY, ENDPOINT (S3), OUTBOX,
PAGE (an origin in --cors-origin serving tests/), STRANGER (the same files
from an origin that is not), FIXTURES, SHOTS (screenshot folder).
"""

import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request

from playwright.sync_api import sync_playwright

API, KEY = os.environ["API"], os.environ["API_KEY"]
ENDPOINT, OUTBOX = os.environ["ENDPOINT"], os.environ["OUTBOX"]
PAGE, STRANGER = os.environ["PAGE"], os.environ["STRANGER"]
FIXTURES, SHOTS = os.environ["FIXTURES"], os.environ["SHOTS"]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def check(condition, what, detail=""):
    if not condition:
        raise AssertionError(f"{what}: {detail}")
    print(f"  ok: {what}")


def api(method, path, body=None, token=KEY):
    request = urllib.request.Request(
        API + path, method=method, data=json.dumps(body).encode() if body else None,
        headers={"content-type": "application/json", "authorization": "Bearer " + token})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def presign(recipe="small:resize,w=64/jpeg"):
    size = os.path.getsize(os.path.join(FIXTURES, "rocket.jpg"))
    return api("POST", "/v1/uploads", {
        "filename": "rocket.jpg", "content_type": "image/jpeg", "size": size, "recipe": recipe})


def put(upload):
    with open(os.path.join(FIXTURES, "rocket.jpg"), "rb") as f:
        body = f.read()
    headers = {k: v for k, v in upload["headers"].items() if k != "content-length"}
    request = urllib.request.Request(upload["upload_url"], data=body, method="PUT", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200, response.status


def console(browser):
    print("console: three files, a bad recipe first")
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(API + "/")
    page.fill("#key", KEY)
    page.press("#key", "Tab")  # `change` keeps it in sessionStorage
    work = tempfile.mkdtemp()
    broken = os.path.join(work, "notes.jpg")  # a text file named .jpg
    shutil.copy(os.path.join(FIXTURES, "not-an-image.txt"), broken)
    files = [os.path.join(FIXTURES, "rocket.jpg"), os.path.join(FIXTURES, "chelsea.png"), broken]
    page.set_input_files("#files", files)

    page.fill("#recipe", "thumb:resize,w=abc/jpeg")
    page.click("#go")
    page.wait_for_function("document.getElementById('recipe-error').textContent.length > 0")
    error = page.text_content("#recipe-error")
    check("column" in error, "a bad recipe is refused with its column shown", error)
    check(page.locator(".job").count() == 0, "nothing was uploaded for the bad recipe")
    check(page.get_attribute("#recipe", "aria-invalid") == "true", "the recipe field is marked invalid")
    page.screenshot(path=os.path.join(SHOTS, "console-bad-recipe.png"), full_page=True)

    page.fill("#recipe", "thumb:resize,w=160,h=160,fit=cover/webp+large:resize,w=480/jpeg,q=85")
    page.click("#go")
    page.wait_for_function(
        "[...document.querySelectorAll('.job')].filter(j => ['done','failed'].includes(j.dataset.status)).length === 3",
        timeout=90_000)
    # Every output <img> has loaded (or failed to) before measuring.
    page.wait_for_function("[...document.querySelectorAll('.job img')].every(i => i.complete)", timeout=30_000)
    jobs = page.eval_on_selector_all(".job", """els => els.map(j => ({
        name: j.querySelector('h2').textContent, status: j.dataset.status, code: j.dataset.code || '',
        text: j.querySelector('.status').textContent,
        imgs: [...j.querySelectorAll('img')].map(i => ({src: i.src, width: i.naturalWidth}))}))""")
    done = [j for j in jobs if j["status"] == "done"]
    failed = [j for j in jobs if j["status"] == "failed"]
    check(len(done) == 2, "two jobs done", jobs)
    for job in done:
        check(len(job["imgs"]) == 2 and all(i["width"] > 0 for i in job["imgs"]),
              f"{job['name']}: both outputs loaded as <img> (naturalWidth > 0)", job["imgs"])
        check(all(i["src"].startswith(f"{ENDPOINT}/{OUTBOX}/") for i in job["imgs"]),
              f"{job['name']}: served from the outbox", job["imgs"][0]["src"][:80])
    check(len(failed) == 1 and failed[0]["name"] == "notes.jpg" and failed[0]["code"],
          "the text file failed and shows its code", failed)
    check(failed[0]["code"] in failed[0]["text"], "the code is on the page", failed[0]["text"])
    page.screenshot(path=os.path.join(SHOTS, "console-results.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 800})
    page.screenshot(path=os.path.join(SHOTS, "console-phone.png"), full_page=True)
    page.close()


def cross_origin(browser):
    print(f"cross-origin: a page at {PAGE} (allowed)")
    other = presign()
    page = browser.new_page()
    page.goto(PAGE + "/browser/crossorigin.html")
    result = page.evaluate("([a, k, o]) => runFlow(a, k, o)", [API, KEY, other["job_id"]])
    print("   ", json.dumps(result)[:600])
    check(result["presign"]["ok"], "presigned through the API", result["presign"])
    check(result["put"]["ok"], "PUT straight to the inbox", result["put"])
    check(result["events"]["ok"] and result["events"]["job"]["status"] == "done",
          "followed the job over SSE with only the job token", result["events"])
    check(result["output"]["ok"] and result["output"]["bytes"] > 0, "fetched an output from the outbox",
          result["output"])
    check(result["otherJob"]["ok"] and result["otherJob"]["status"] == 403,
          "the job token cannot read another job", result["otherJob"])
    check(not result["otherEvents"]["ok"], "nor follow another job's events", result["otherEvents"])
    page.close()

    print(f"cross-origin: the same page at {STRANGER} (not allowed)")
    given = presign()
    page = browser.new_page()
    page.goto(STRANGER + "/browser/crossorigin.html")
    result = page.evaluate("([a, k, u]) => runFlow(a, k, null, u)", [API, KEY, given])
    print("   ", json.dumps(result)[:600])
    check(not result["presign"]["ok"] and "TypeError" in result["presign"]["error"],
          "the browser blocks its call to the API", result["presign"])
    check(not result["put"]["ok"] and "TypeError" in result["put"]["error"],
          "the browser blocks its PUT to the inbox", result["put"])
    # The PUT never reached S3 (a preflight refusal stops it), so no job ran.
    job = api("GET", f"/v1/jobs/{given['job_id']}?wait=3")
    check(job["status"] == "pending", "the blocked upload started no job", job["status"])
    page.close()


def sse_fan_in(n=50):
    print(f"SSE: {n} clients waiting on {n} jobs at once (imgflow api + a separate worker)")

    def metric(name):
        with urllib.request.urlopen(API + "/metrics", timeout=10) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " ") or line.startswith(name + "{"):
                    return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = metric("imgflow_api_manifest_checks_total")
    uploads = [presign() for _ in range(n)]
    finals, connected = {}, threading.Barrier(n + 1, timeout=60)

    def listen(upload):
        url = f"{API}{upload['events_url']}?token={upload['job_token']}"
        deadline = time.monotonic() + 120
        event, signalled = None, False
        # EventSource's behaviour: reconnect when a (bounded) stream ends.
        while time.monotonic() < deadline and upload["job_id"] not in finals:
            with urllib.request.urlopen(url, timeout=130) as stream:
                for raw in stream:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        event = line[7:]
                        if not signalled:
                            signalled = True
                            connected.wait()
                    elif line.startswith("data: ") and event in ("done", "failed"):
                        finals[upload["job_id"]] = event
                        break

    threads = [threading.Thread(target=listen, args=(u,), daemon=True) for u in uploads]
    for t in threads:
        t.start()
    connected.wait()  # all n streams are open and have said `pending`
    started = time.monotonic()
    for upload in uploads:
        put(upload)
    for t in threads:
        t.join(timeout=150)
    took = time.monotonic() - started
    checks = metric("imgflow_api_manifest_checks_total") - before
    check(len(finals) == n and all(v == "done" for v in finals.values()),
          f"all {n} clients got their final event", f"{len(finals)} finals")
    print(f"  measured: {n} jobs finished {took:.1f} s after the first PUT; the API listed the outbox "
          f"{checks:.0f} times ({checks / n:.1f} ListObjectsV2 per job, plus 1 GetObject of each manifest)")
    return {"jobs": n, "seconds": round(took, 1), "list_calls": checks, "list_per_job": round(checks / n, 2)}


def main():
    os.makedirs(SHOTS, exist_ok=True)
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            console(browser)
            cross_origin(browser)
        finally:
            browser.close()
    measured = sse_fan_in()
    with open(os.path.join(SHOTS, "sse-measurement.json"), "w") as f:
        json.dump(measured, f, indent=1)
    print(f"browser tests passed in {time.monotonic() - started:.0f} s; screenshots in {SHOTS}")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
