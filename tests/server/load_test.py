"""Load test for `zflow serve`: 16 concurrent clients send 240 requests mixing the OpenAI, A1111
and native job APIs, with cancellations and A1111 interrupts, against a queue small enough to
overflow. Refusals (429) are retried, as real clients do. Every request must end accounted for:
completed with the right images or cancelled, every refusal counted -- none lost, none
duplicated -- and the server's own counters must agree.
Prints p50/p99 latency. Standard library only.

Usage: load_test.py ZFLOW_BINARY
"""
import base64
import concurrent.futures
import json
import random
import socket
import statistics
import sys
import time
import urllib.error
import urllib.request

from serve_fixture import zflow_server

CLIENTS = 16
REQUESTS = 240
SIZE = 32  # the tiny model's smallest side (multiple of 16)


REJECTIONS = []  # one entry per 429 received (list.append is atomic under the GIL)


def call(base, method, path, body=None):
    """One HTTP call; a 429 is retried after a short pause, as clients honouring Retry-After do
    (the pause is shortened to keep the test quick), and counted."""
    for _ in range(200):
        status, answer = call_once(base, method, path, body)
        if status != 429:
            return status, answer
        REJECTIONS.append(path)
        time.sleep(random.uniform(0.01, 0.05))
    return status, answer


def call_once(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def png_size(b64):
    raw = base64.b64decode(b64)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")


def one_request(base, i):
    """Runs request i; returns (kind, outcome, seconds, job id or None)."""
    rng = random.Random(i)
    kind = ["openai", "a1111", "job", "job-cancel", "interrupt"][i % 5]
    n = rng.choice([1, 2])
    seed = 1000 + i
    start = time.monotonic()
    if kind == "openai":
        status, body = call(base, "POST", "/v1/images/generations",
                            {"prompt": f"cat {i}", "n": n, "size": f"{SIZE}x{SIZE}", "steps": 2,
                             "seed": seed})
        if status == 200:
            assert len(body["data"]) == n, body
            assert all(png_size(d["b64_json"]) == (SIZE, SIZE) for d in body["data"])
    elif kind in ("a1111", "interrupt"):
        status, body = call(base, "POST", "/sdapi/v1/txt2img",
                            {"prompt": f"dog {i}", "width": SIZE, "height": SIZE, "steps": 2,
                             "seed": seed, "batch_size": n})
        if status == 200:
            assert len(body["images"]) == n and json.loads(body["info"])["seed"] == seed, body
        if kind == "interrupt":
            call(base, "POST", "/sdapi/v1/interrupt")
    else:
        status, body = call(base, "POST", "/v1/jobs",
                            {"prompt": f"bird {i}", "n": n, "width": SIZE, "height": SIZE,
                             "steps": 3, "seed": seed})
        if status == 202:
            job = body["id"]
            if kind == "job-cancel":
                call(base, "DELETE", f"/v1/jobs/{job}")
            while True:
                status, body = call(base, "GET", f"/v1/jobs/{job}")
                assert status == 200, body
                if body["state"] in ("completed", "failed", "cancelled"):
                    break
                time.sleep(0.01)
            assert body["state"] != "failed", body
            if body["state"] == "completed":
                assert len(body["images"]) == n, body
                assert all(im["request"]["seed"] == seed for im in body["images"])
            return kind, body["state"], time.monotonic() - start, job
    seconds = time.monotonic() - start
    outcome = {200: "completed", 409: "cancelled"}.get(status)
    assert outcome, f"{kind} request {i}: HTTP {status} {body}"
    return kind, outcome, seconds, None


def misbehave(base, i):
    """Clients that go wrong: one stalls mid-header, one vanishes after sending a generation
    request, one sends garbage. The server must shrug all of them off."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    try:
        if i % 3 == 0:
            sock.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Len")
            time.sleep(0.5)
        elif i % 3 == 1:
            body = json.dumps({"prompt": "gone", "size": f"{SIZE}x{SIZE}", "steps": 2}).encode()
            sock.sendall(b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
        else:
            sock.sendall(bytes(random.Random(i).randrange(256) for _ in range(300)) + b"\r\n\r\n")
            sock.recv(100)
    finally:
        sock.close()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} missing from /metrics")


def main():
    with zflow_server(sys.argv[1], ["--queue", "6", "--threads", "1"]) as base:
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(CLIENTS + 4) as pool:
            # The stalled clients hold their connections through the load; the vanished ones
            # submit while the queue still has room, so their jobs are accepted, not refused.
            vandals = [pool.submit(misbehave, base, i) for i in range(12)]
            time.sleep(0.2)
            results = list(pool.map(lambda i: one_request(base, i), range(REQUESTS)))
            for v in vandals:
                v.result()
        wall = time.monotonic() - started
        assert call_once(base, "GET", "/health")[0] == 200
        # The vanished clients' jobs still ran to the end (or were interrupted): wait for quiet.
        for _ in range(500):
            if call_once(base, "GET", "/sdapi/v1/progress")[1]["state"]["job_count"] == 0:
                break
            time.sleep(0.01)
        with urllib.request.urlopen(base + "/metrics") as res:
            metrics = res.read().decode()

    jobs = [job for *_, job in results if job]
    assert len(jobs) == len(set(jobs)), "a job id was handed out twice"
    counts = {}
    for kind, outcome, _, _ in results:
        counts[outcome] = counts.get(outcome, 0) + 1
    assert sum(counts.values()) == REQUESTS
    served = {s: metric(metrics, f'zflow_jobs_total{{state="{s}"}}')
              for s in ("completed", "cancelled", "failed", "rejected")}
    assert served["failed"] == 0, served
    # Each vanished client (12 // 3 = 4) left a job behind that ended completed or cancelled.
    vanished = 4
    assert served["completed"] + served["cancelled"] == REQUESTS + vanished, (served, counts)
    assert counts.get("completed", 0) <= served["completed"] <= counts.get("completed", 0) + vanished

    assert served["rejected"] == len(REJECTIONS), (served, len(REJECTIONS))
    assert counts.get("completed", 0) > REQUESTS // 2, counts
    assert REJECTIONS, "the queue never filled: the test did not exercise 429"

    latencies = sorted(s for _, outcome, s, _ in results if outcome == "completed")
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    print(f"load test: {REQUESTS} requests from {CLIENTS} clients in {wall:.1f} s: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
          + f" ({len(REJECTIONS)} refusals with 429 retried)"
          + f"; completed latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")


if __name__ == "__main__":
    main()
