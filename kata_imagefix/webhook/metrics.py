"""The webhook's Prometheus metrics, in the text exposition format (no client library needed)."""

from __future__ import annotations

import threading
from collections import defaultdict

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, str], int] = defaultdict(int)  # (path, outcome) -> count
        self.failures: dict[str, int] = defaultdict(int)  # path -> bad reviews, internal errors, HTTP errors
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * len(BUCKETS))
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def observe(self, path: str, outcome: str, seconds: float) -> None:
        with self.lock:
            self.requests[(path, outcome)] += 1
            if outcome == "error":
                self.failures[path] += 1
            for index, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self.buckets[path][index] += 1
            self.sums[path] += seconds
            self.counts[path] += 1

    def render(self, stats: object, answer_hits: int = 0) -> str:
        """The exposition text; `stats` is the image cache's FactStats, `answer_hits` the answers memo's."""
        lines = ["# HELP imagefix_webhook_requests_total Admission requests answered, by path and outcome.",
                 "# TYPE imagefix_webhook_requests_total counter"]
        with self.lock:
            for (path, outcome), count in sorted(self.requests.items()):
                lines.append(f'imagefix_webhook_requests_total{{path="{path}",outcome="{outcome}"}} {count}')
            lines += ["# HELP imagefix_webhook_failures_total Requests that could not be judged.",
                      "# TYPE imagefix_webhook_failures_total counter"]
            for path, count in sorted(self.failures.items()):
                lines.append(f'imagefix_webhook_failures_total{{path="{path}"}} {count}')
            lines += ["# HELP imagefix_webhook_request_duration_seconds Time to answer a request.",
                      "# TYPE imagefix_webhook_request_duration_seconds histogram"]
            duration = "imagefix_webhook_request_duration_seconds"
            for path in sorted(self.counts):
                for bound, count in zip(BUCKETS, self.buckets[path], strict=True):
                    lines.append(f'{duration}_bucket{{path="{path}",le="{bound}"}} {count}')
                lines.append(f'{duration}_bucket{{path="{path}",le="+Inf"}} {self.counts[path]}')
                lines.append(f'{duration}_sum{{path="{path}"}} {self.sums[path]:.6f}')
                lines.append(f'{duration}_count{{path="{path}"}} {self.counts[path]}')
        for name, help_text in (("reads", "Images opened in the registry."),
                                ("read_failures", "Image reads that failed."),
                                ("cache_hits", "Images answered from the in-memory cache."),
                                ("deadline_misses", "Images not read within a request's deadline.")):
            metric = f"imagefix_webhook_image_{name}_total"
            lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter",
                      f"{metric} {getattr(stats, name)}"]
        lines += ["# HELP imagefix_webhook_answer_cache_hits_total Reviews answered as an identical one was.",
                  "# TYPE imagefix_webhook_answer_cache_hits_total counter",
                  f"imagefix_webhook_answer_cache_hits_total {answer_hits}"]
        return "\n".join(lines) + "\n"


__all__ = ["BUCKETS", "Metrics"]
