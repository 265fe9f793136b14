from collections.abc import Iterator

from ..image.model import short_created_by
from ..sizes import human_size
from .base import ImageSubject, Target, rule
from .finding import Draft, Severity


@rule("KIF201", "large-layer", Severity.WARNING, Target.IMAGE)
def check(subject: ImageSubject) -> Iterator[Draft]:
    """A layer's unpacked size is above `--max-layer-size` (default 100 MB).

    Why: under guest pull every layer is downloaded and unpacked inside the
    guest, into memory (tmpfs). One huge layer is one long, unbroken step that
    can run past `create_container_timeout`, and it is usually a sign of build
    caches or artifacts that a multi-stage build would leave behind.

    Fix: split the layer, clean caches in the same RUN, copy only the
    artifacts into a slim runtime stage (`imagefix fix --variant multistage`),
    or raise `--max-layer-size` if the layer is what the workload needs.
    """
    for layer in subject.image.layers:
        if layer.size is None or layer.size <= subject.max_layer_size:
            continue
        estimated = " (estimated)" if layer.size_estimated else ""
        step = short_created_by(layer.created_by)
        yield subject.finding(
            f"layer {layer.index}{f' ({step})' if step else ''} is {human_size(layer.size)} "
            f"unpacked{estimated}, above the {human_size(subject.max_layer_size)} per-layer limit",
            "slim or split it (clean caches in the same RUN, multi-stage build), "
            "or raise --max-layer-size",
            layer=layer.index,
            unpacked_bytes=layer.size,
            limit_bytes=subject.max_layer_size,
            size_estimated=layer.size_estimated,
        )
