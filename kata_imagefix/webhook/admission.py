"""One AdmissionReview (admission.k8s.io/v1) in, its answer out: the use case behind `/mutate` and
`/validate`, with no HTTP in it.

- mutate: a Pod CREATE of a Kata runtime class (the selection `k8s check`
  makes) gets what `k8s fix` would write (k8s/fixplan.py) as a JSONPatch;
  what is still wrong afterwards (the pod rules run on the patched pod, as
  `k8s fix` re-audits what it wrote) goes into `warnings` and into the
  UNFIXED_ANNOTATION (the rule ids) so that operators can list such pods.
- validate: the pod rules on the pod as it is; an error-level finding denies
  it (with warn_only: a warning), the rule id and the fix in the message.
- never block the cluster by accident: other kinds, other operations (a
  pod's identity cannot change after it is created) and non-Kata pods are
  allowed untouched; an image that cannot be read in time gives "allowed,
  not mutated" and a warning; a review that cannot be read gives an error
  answer whose `allowed` follows the failure policy.

dryRun needs nothing special: answering has no side effects (the image cache
is not one), so a dry run gets the same answer as the real request.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import ImagefixError
from ..k8s.audit import AuditOptions, audit, is_kata
from ..k8s.fixplan import plan_workload
from ..k8s.manifests import _workload
from ..k8s.pod import _pod_spec
from ..kata.budget import BudgetModel
from ..scan import RuleSelection
from .facts import ImageFacts
from .patch import annotation_ops, applied, plan_ops

API_VERSION = "admission.k8s.io/v1"
UNFIXED_ANNOTATION = "imagefix.kata/unfixed"
MAX_WARNING = 256  # longer warnings may be truncated by the API server
MAX_WARNINGS = 4096  # all warnings together (from every webhook: leave room for others)


@dataclass(frozen=True)
class WebhookOptions:
    audit: AuditOptions = field(default_factory=AuditOptions)
    model: BudgetModel = field(default_factory=BudgetModel)
    warn_only: bool = False  # validate: warn instead of deny
    deadline_s: float = 8.0  # below the webhook's timeoutSeconds (10 s by default)
    allow_on_error: bool = True  # the failure policy: what a review that cannot be judged gets
    also_templates: bool = False  # the pod templates of controllers (CREATE and UPDATE) as well as Pods


@dataclass
class Answer:
    status: int  # the HTTP status
    review: dict[str, Any]
    outcome: str  # mutated, allowed, denied, warned, skipped, unread, error

    @property
    def body(self) -> bytes:
        return json.dumps(self.review, separators=(",", ":")).encode()


class Memo:
    """Answers already given, by (mode, the object as sent, the digests its images resolved to): the pods
    of one ReplicaSet arrive identical (the name is generated after admission), so each is judged once.
    Bounded; the review's uid is put in afresh."""

    def __init__(self, size: int = 1024) -> None:
        import threading
        from collections import OrderedDict

        self.size, self.lock = size, threading.Lock()
        self.entries: OrderedDict[tuple, tuple[dict[str, Any], str]] = OrderedDict()
        self.hits = 0

    def get(self, key: tuple) -> tuple[dict[str, Any], str] | None:
        with self.lock:
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
                self.hits += 1
            return found

    def put(self, key: tuple, response: dict[str, Any], outcome: str) -> None:
        with self.lock:
            self.entries[key] = (response, outcome)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)


class BadReview(Exception):
    def __init__(self, message: str, uid: str = "") -> None:
        super().__init__(message)
        self.uid = uid


def answer(body: bytes, mode: str, options: WebhookOptions, facts: ImageFacts,
           memo: Memo | None = None) -> Answer:
    """The answer to one request body; `mode` is "mutate" or "validate". Never raises."""
    started = time.monotonic()
    try:
        request = _request(body)
    except BadReview as exc:
        # without a uid the API server cannot match any answer: a 400 makes it apply its failure policy
        return _error(exc.uid, str(exc), options, 200 if exc.uid else 400)
    uid = request["uid"]
    try:
        return _judge(request, mode, options, facts, started, memo)
    except ImagefixError as exc:
        return _error(uid, str(exc), options, 200)
    except Exception as exc:  # a bug must not deny pods by accident: the failure policy decides
        return _error(uid, f"internal error: {type(exc).__name__}: {exc}", options, 200)


def _request(body: bytes) -> dict[str, Any]:
    try:
        review = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadReview(f"the body is not JSON: {exc}") from None
    if not isinstance(review, dict):
        raise BadReview("the body is not an AdmissionReview object")
    request = review.get("request")
    uid = request.get("uid") if isinstance(request, dict) else None
    uid = uid if isinstance(uid, str) else ""
    if review.get("apiVersion") != API_VERSION or review.get("kind") != "AdmissionReview":
        raise BadReview(f"expected apiVersion {API_VERSION}, kind AdmissionReview; got "
                        f"{review.get('apiVersion')!r}, {review.get('kind')!r}", uid)
    if not isinstance(request, dict) or not uid:
        raise BadReview("the AdmissionReview has no request.uid", uid)
    return request


def _review(uid: str, allowed: bool, **response: Any) -> dict[str, Any]:
    warnings, total = [], 0
    for line in response.get("warnings") or []:  # the API server ignores warnings past 4096 characters
        total += len(line)
        if total > MAX_WARNINGS:
            break
        warnings.append(line)
    response["warnings"] = warnings
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview",
            "response": {"uid": uid, "allowed": allowed, **{k: v for k, v in response.items() if v}}}


def _error(uid: str, message: str, options: WebhookOptions, status: int) -> Answer:
    message = f"imagefix: {message}"
    review = _review(uid, options.allow_on_error, status={"code": 400, "message": message},
                     warnings=[message[:MAX_WARNING]] if options.allow_on_error else None)
    return Answer(status, review, "error")


# the API group of each kind whose pod template --also-templates fixes (k8s/pod.py WORKLOAD_PATHS)
TEMPLATE_GROUPS = {"Deployment": "apps", "StatefulSet": "apps", "DaemonSet": "apps", "ReplicaSet": "apps",
                   "Job": "batch", "CronJob": "batch", "ReplicationController": "", "PodTemplate": ""}


def _target(request: dict[str, Any], options: WebhookOptions) -> str | None:
    """The kind to judge, or None: Pods on CREATE (a pod's identity cannot change after it is
    created); with also_templates, controllers' templates on CREATE and UPDATE."""
    kind = request.get("kind")
    if not isinstance(kind, dict) or request.get("subResource"):
        return None
    name, group, operation = kind.get("kind"), kind.get("group", ""), request.get("operation")
    if name == "Pod" and group == "" and operation == "CREATE":
        return "Pod"
    templated = options.also_templates and TEMPLATE_GROUPS.get(str(name)) == group
    if templated and operation in ("CREATE", "UPDATE"):
        return str(name)
    return None


def _judge(request: dict[str, Any], mode: str, options: WebhookOptions, facts: ImageFacts,
           started: float, memo: Memo | None = None) -> Answer:
    uid = request["uid"]
    pod = request.get("object")
    kind = _target(request, options)
    if kind is None:
        return Answer(200, _review(uid, True), "skipped")
    pod = {**pod, "kind": kind} if isinstance(pod, dict) else pod
    if not isinstance(pod, dict) or _pod_spec(pod) is None:
        raise ImagefixError(f"the request's object is not a {kind} with a pod spec")
    written = pod.get("metadata")
    metadata = written if isinstance(written, dict) else {}
    named = {**metadata, "namespace": metadata.get("namespace") or request.get("namespace") or "default",
             "name": metadata.get("name") or request.get("name") or metadata.get("generateName") or "?"}
    workload = _workload({**pod, "metadata": named}, "admission", 0)
    if not is_kata(workload, options.audit):
        return Answer(200, _review(uid, True), "skipped")
    remaining = options.deadline_s - (time.monotonic() - started)
    reads = facts.lookup([c.image for c in workload.containers], remaining * 0.8)
    unread = {ref: why for ref, (image, why) in reads.items() if image is None}
    if unread:
        warnings = [_short(f"imagefix: {ref} could not be read ({why}); the pod is admitted unchanged")
                    for ref, why in unread.items()]
        return Answer(200, _review(uid, True, warnings=warnings), "unread")
    images = {ref: (image, None) for ref, (image, _) in reads.items()}
    key = (mode, request.get("namespace"), json.dumps(pod, sort_keys=True),
           tuple(sorted((ref, image.digest or id(image)) for ref, (image, _) in images.items())))
    known = memo.get(key) if memo is not None else None
    if known is not None:
        return Answer(200, {"apiVersion": API_VERSION, "kind": "AdmissionReview",
                            "response": {**known[0], "uid": uid}}, known[1])
    result = _decide(uid, mode, pod, workload, images, options)
    if memo is not None:
        memo.put(key, result.review["response"], result.outcome)
    return result


def _decide(uid: str, mode: str, pod: dict[str, Any], workload: Any, images: dict,
            options: WebhookOptions) -> Answer:
    if mode == "validate":
        return _validate(uid, pod, workload.title, images, options)
    plan = plan_workload(workload, lambda ref: images[ref][0], options.audit, options.model)
    ops = plan_ops(pod, plan)
    left = _findings(applied(pod, ops), images, options)
    if left:
        rules = ",".join(sorted({f.rule for f in left}))
        ops += annotation_ops(applied(pod, ops), {UNFIXED_ANNOTATION: rules})
    warnings = [_short(line) for f in left
                for line in [f"imagefix {f.rule} (not fixed): {f.message}"] +
                ([f"imagefix {f.rule} Fix: {f.fix}"] if f.fix else [])]
    if not ops:
        return Answer(200, _review(uid, True, warnings=warnings), "allowed")
    patch = base64.b64encode(json.dumps(ops, separators=(",", ":")).encode()).decode()
    return Answer(200, _review(uid, True, patchType="JSONPatch", patch=patch, warnings=warnings), "mutated")


def _validate(uid: str, pod: dict[str, Any], title: str, images: dict, options: WebhookOptions) -> Answer:
    found = _findings(pod, images, options)
    errors = [f for f in found if f.severity.label == "error"]
    # kubectl shows each warning on a line and the API server may cut long ones: the fix on its own line
    lines = [line for f in found for line in ([f"{f.rule}: {f.message}"] +
                                              ([f"{f.rule} Fix: {f.fix}"] if f.fix else []))]
    if errors and not options.warn_only:
        message = f"imagefix: {title} will not start on Kata: " + "; ".join(
            f"{f.rule}: {f.message}" + (f" Fix: {f.fix}" if f.fix else "") for f in errors)
        status = {"code": 403, "reason": "Forbidden", "message": message}
        return Answer(200, _review(uid, False, status=status,
                                   warnings=[_short(f"imagefix {line}") for line in lines]), "denied")
    warnings = [_short(f"imagefix {line}") for line in lines]
    return Answer(200, _review(uid, True, warnings=warnings), "warned" if warnings else "allowed")


def _findings(pod: dict[str, Any], images: dict, options: WebhookOptions) -> list[Any]:
    """The pod rules at warning level and above, as `k8s check` runs them (the images read already)."""
    def never(ref: str) -> Any:
        raise ImagefixError(f"{ref}: not read for this request")

    run = audit([("admission", json.dumps(pod))], options.audit, options.model, RuleSelection(), never,
                images)
    return [f for result in run.results for f in result.findings if f.severity.label in ("error", "warning")]


def _short(text: str) -> str:
    return text if len(text) <= MAX_WARNING else text[: MAX_WARNING - 1] + "…"


__all__ = ["API_VERSION", "UNFIXED_ANNOTATION", "Answer", "Memo", "WebhookOptions", "answer"]
