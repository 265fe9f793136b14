"""`scan` over many references: read them (arguments, a file or stdin), parse every one before any work,
scan each on its own (a few at once), and keep an image that cannot be read as an error of its own
instead of stopping the others."""

from __future__ import annotations

import sys

import msgspec

from ..errors import ImagefixError
from ..image.reference import ImageRef, parse_image_ref
from ..image.sources import open_images
from ..model.budget import BudgetModel
from ..registry.options import RegistryOptions
from ..rules.result import ScanResult
from ..scan import DEFAULT_MAX_LAYER_SIZE, RuleSelection, scan_image


class ScanRequest(msgspec.Struct):
    refs: tuple[str, ...] | list[str] = ()
    from_file: str | None = None  # more references, one a line ('-': stdin; '#' comments)
    platform: str | None = None
    registry: RegistryOptions | None = None
    selection: RuleSelection = msgspec.field(default_factory=RuleSelection)
    model: BudgetModel = msgspec.field(default_factory=BudgetModel)
    max_layer_size: int = DEFAULT_MAX_LAYER_SIZE
    jobs: int = 4


class ScanRun(msgspec.Struct):
    results: list[ScanResult]  # one per image (several for --all-platforms), in the order asked
    errors: list[tuple[str, str]]  # (reference as given, why it could not be scanned)


def read_refs(refs: tuple[str, ...] | list[str], from_file: str | None) -> list[str]:
    """The references given, then those of the file (blank lines and # comments left out)."""
    items = list(refs)
    if from_file:
        try:
            handle = sys.stdin if from_file == "-" else open(from_file, encoding="utf-8")  # noqa: SIM115
            with handle:
                items += [line.strip() for line in handle
                          if line.strip() and not line.lstrip().startswith("#")]
        except OSError as exc:
            raise ImagefixError(f"cannot read {from_file}: {exc.strerror}") from None
    if not items:
        raise ImagefixError("no image given: name one or more references (or --from-file)")
    return items


def scan_refs(request: ScanRequest) -> ScanRun:
    """Every reference scanned; a bad reference stops before any image is read."""
    parsed = [parse_image_ref(item) for item in read_refs(request.refs, request.from_file)]

    def one(ref: ImageRef) -> list[ScanResult] | ImagefixError:
        try:
            images = open_images(ref, platform=request.platform, registry=request.registry)
            return [scan_image(image, request.selection, request.model, request.max_layer_size)
                    for image in images]
        except ImagefixError as exc:
            return exc

    outcomes: list[list[ScanResult] | ImagefixError]
    if len(parsed) == 1 or request.jobs == 1:
        outcomes = [one(ref) for ref in parsed]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=request.jobs) as pool:
            outcomes = list(pool.map(one, parsed))
    results = [r for o in outcomes if not isinstance(o, ImagefixError) for r in o]
    errors = [(ref.original, str(o)) for ref, o in zip(parsed, outcomes, strict=True)
              if isinstance(o, ImagefixError)]
    return ScanRun(results, errors)
