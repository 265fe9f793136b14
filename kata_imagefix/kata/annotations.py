"""How Kata reads pod annotations: which ones `enable_annotations` lets through, and number values.

Go (`src/runtime/pkg/oci/utils.go`): `regexpContains` tries each `enable_annotations`
entry as an unanchored regular expression (an invalid one matches nothing);
numbers go through `strconv.ParseUint(value, 10, 64)` - ASCII digits only, no
sign, space or `_` - and a value it refuses makes the runtime refuse the pod.
runtime-rs (`src/libs/kata-types`): one `RegexSet` of all entries (one invalid
entry and nothing matches); numbers are trimmed, then parsed by Rust's
`str::parse::<u32>` (a leading `+` is accepted, 2^32 and above refused).
Kubernetes itself refuses an annotation whose value is not a string (an unquoted
number in YAML).
"""

from __future__ import annotations

import re
from typing import Any

PREFIX = "io.katacontainers.config."
HYPERVISOR_PREFIX = PREFIX + "hypervisor."
TIMEOUT_ANNOTATION = PREFIX + "runtime.create_container_timeout"
MEMORY_ANNOTATION = HYPERVISOR_PREFIX + "default_memory"
KERNEL_PARAMS_ANNOTATION = HYPERVISOR_PREFIX + "kernel_params"
NUMBER_ANNOTATIONS = (TIMEOUT_ANNOTATION, MEMORY_ANNOTATION)


def annotation_enabled(patterns: Any, name: str, runtime: str = "go") -> bool:
    """Whether `io.katacontainers.config.hypervisor.<name>` passes `enable_annotations`."""
    listed = [p for p in patterns if isinstance(p, str)] if isinstance(patterns, list | tuple) else []
    compiled = []
    for pattern in listed:
        try:
            compiled.append(re.compile(pattern))
        except re.error:
            if runtime == "rs":
                return False  # RegexSet::new fails as a whole
    return any(p.search(name) for p in compiled)


def parse_number(value: Any, runtime: str = "go") -> tuple[int | None, str | None]:
    """(the number Kata reads, None) or (None, why Kata - or the API server - refuses the value)."""
    if not isinstance(value, str):
        shown = "true/false" if isinstance(value, bool) else type(value).__name__
        return None, (f"the value is not a string ({shown}): the API server refuses the manifest "
                      "(quote it)")
    text = value.strip() if runtime == "rs" else value
    digits = text[1:] if runtime == "rs" and text.startswith("+") else text
    if not (digits and digits.isascii() and digits.isdigit()):
        rule = ("Rust's u32 parse" if runtime == "rs"
                else "Go's strconv.ParseUint (base 10: ASCII digits only, no sign, space or _)")
        return None, f"{value!r} is not a whole number to {rule}: Kata refuses the pod"
    number = int(digits)
    limit = 2**32 if runtime == "rs" else 2**64
    if number >= limit:
        return None, f"{value!r} is too large (>= 2^{limit.bit_length() - 1}): Kata refuses the pod"
    return number, None


def number_or_none(value: Any, runtime: str = "go") -> int | None:
    return parse_number(value, runtime)[0]
