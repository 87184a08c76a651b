"""Load on an ``l1lite serve`` endpoint: C concurrent clients x R chat requests each, on loopback.

    PYTHONPATH=. python -m l1lite.cli serve --model tiny.gguf --port 8000 &
    PYTHONPATH=. python benchmarks/serve_load.py --url http://127.0.0.1:8000 --clients 8 --requests 10

Every request must be answered (HTTP 200 with a choice) or refused because the queue is full (HTTP 503
with the ``queue_full`` error); anything else (another status, a broken connection, no answer within
``--timeout``) is lost. Prints the counts and the p50/p95 latency of each; exits 1 when one was lost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request


def _one(url: str, body: bytes, key: str | None, timeout: float) -> str:
    """One request: ``answered``, ``refused`` or ``lost: <why>``."""
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {key}"} if key else {})
    req = urllib.request.Request(url + "/v1/chat/completions", data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return "answered" if json.loads(resp.read())["choices"][0]["message"] else "lost: no message"
    except urllib.error.HTTPError as e:
        error = json.loads(e.read()).get("error", {})
        return "refused" if e.code == 503 and error.get("code") == "queue_full" else f"lost: HTTP {e.code} {error}"
    except (OSError, ValueError, KeyError, IndexError) as e:
        return f"lost: {e!r}"


def load(url: str, clients: int, requests: int, payload: dict, key: str | None, timeout: float) -> list[tuple]:
    """``clients`` threads each send ``requests`` requests one after another: (outcome, seconds) for each.

    Args:
        url: the server, without ``/v1``.
        clients: concurrent clients.
        requests: requests per client.
        payload: the chat request.
        key: the API key (None: none).
        timeout: seconds to wait for each answer.
    """
    body = json.dumps(payload).encode()
    results: list[tuple] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(requests):
            start = time.perf_counter()
            outcome = _one(url, body, key, timeout)
            with lock:
                results.append((outcome, time.perf_counter() - start))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def summarize(results: list[tuple]) -> dict:
    """Counts, and p50/p95 latency in seconds, of answered and refused requests; the reasons of lost ones."""
    out: dict = {"requests": len(results), "lost": [o for o, _ in results if o.startswith("lost")]}
    for kind in ("answered", "refused"):
        times = sorted(t for o, t in results if o == kind)
        out[kind] = len(times)
        if times:
            q = statistics.quantiles(times, n=20, method="inclusive") if len(times) > 1 else [times[0]] * 19
            out[f"{kind}_p50_s"], out[f"{kind}_p95_s"] = round(statistics.median(times), 4), round(q[18], 4)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=10, help="per client")
    p.add_argument("--budget", type=int, default=8, help="thinking_budget of each request (enforce cap)")
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--api-key")
    p.add_argument("--timeout", type=float, default=120, help="seconds to wait for each answer")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = p.parse_args()
    payload = {
        "messages": [{"role": "user", "content": "What is 2 + 3?"}],
        "thinking_budget": args.budget,
        "enforce": "cap",
        "max_tokens": args.max_tokens,
    }
    start = time.perf_counter()
    summary = summarize(load(args.url, args.clients, args.requests, payload, args.api_key, args.timeout))
    summary["wall_s"] = round(time.perf_counter() - start, 3)
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
    return 1 if summary["lost"] or summary["requests"] != args.clients * args.requests else 0


if __name__ == "__main__":
    sys.exit(main())
