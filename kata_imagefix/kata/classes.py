"""The values each runtime class ships with (Kata 4.1): the one table imagefix reads them from.

Read off the configuration files Kata's own Makefiles generate (`make -C src/runtime
config/configuration-<shim>.toml`, `make -C src/runtime-rs ...`, x86_64) at the
commit below; tests/test_kata_classes.py checks every row against those files
(tests/data/kata-4.1.0/). Class names are kata-deploy's: `kata-<shim>` for every
shim it installs (`ALL_SHIMS` in tools/packaging/kata-deploy/binary/src/artifacts/
install.rs), `-debug`/`-devkit` variants included (same config, debug drop-ins).

Sources of the numbers (docs/kata-config.md): Go `DEFCREATECONTAINERTIMEOUT` = 60,
runtime-rs `DEFCREATECONTAINERTIMEOUT` = 30 and `_COCO` = 60, `DEFMEMSZ` = 2048,
the NVIDIA GPU classes `DEFAULTTIMEOUT_NV` = 1200 and `DEFAULTMEMORY_NV` = 8192;
`enable_annotations` from `DEFENABLEANNOTATIONS*`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .annotations import annotation_enabled

KATA_VERSION = "4.1.0"
KATA_COMMIT = "7c6ba40c54ea29b459b4997cff948caaba4e658b"
IMAGE_PULL_TIMEOUT_PARAM = "agent.image_pull_timeout"
# src/agent/src/config.rs DEFAULT_IMAGE_PULL_TIMEOUT; no shipped config sets the parameter
DEFAULT_IMAGE_PULL_TIMEOUT = 1200


@dataclass(frozen=True)
class ShippedClass:
    name: str  # the runtime class (kata-deploy: kata-<shim>)
    runtime: str  # go | rs
    hypervisor: str  # the [hypervisor.<name>] table
    timeout_s: int  # create_container_timeout
    memory_mib: int  # default_memory
    annotations: tuple[str, ...]  # enable_annotations, as shipped

    @property
    def config_file(self) -> str:
        shim = self.name.removeprefix("kata-")
        folder = "share/defaults/kata-containers" + ("/runtime-rs" if self.runtime == "rs" else "")
        return f"/opt/kata/{folder}/configuration-{shim}.toml"

    def enables(self, annotation: str) -> bool:
        return annotation_enabled(self.annotations, annotation, self.runtime)

    @property
    def source(self) -> str:
        runtime = "Go" if self.runtime == "go" else "runtime-rs"
        return f"{self.name} as Kata {KATA_VERSION} ships it, {runtime} runtime"


_GO = ("enable_iommu", "kernel_params", "kernel_verity_params")  # DEFENABLEANNOTATIONS
_GO_COCO = (*_GO, "default_vcpus", "default_memory", "cc_init_data")  # DEFENABLEANNOTATIONS_COCO
_GO_REMOTE = ("machine_type", "default_memory", "default_vcpus", "image", "default_gpus", "gpu_model",
              "cc_init_data")
_RS = (*_GO, "default_vcpus", "default_memory")  # runtime-rs DEFENABLEANNOTATIONS
_RS_COCO = (*_RS, "cc_init_data")
_RS_NVIDIA: tuple[str, ...] = ()  # DEFENABLEANNOTATIONS_NVIDIA
_RS_COCO_NVIDIA = ("cc_init_data",)

SHIPPED: dict[str, ShippedClass] = {c.name: c for c in (
    ShippedClass("kata-clh", "go", "clh", 60, 2048, _GO),
    ShippedClass("kata-clh-azure", "go", "clh", 60, 2048, _GO),
    ShippedClass("kata-clh-azure-runtime-rs", "rs", "clh", 30, 2048, _RS),
    ShippedClass("kata-clh-runtime-rs", "rs", "clh", 30, 2048, _RS),
    ShippedClass("kata-dragonball", "rs", "dragonball", 30, 2048, _RS),
    ShippedClass("kata-fc", "go", "firecracker", 60, 2048, _GO),
    ShippedClass("kata-openvmm-azure-runtime-rs", "rs", "openvmm", 30, 2048, _RS),
    ShippedClass("kata-remote", "go", "remote", 60, 2048, _GO_REMOTE),
    ShippedClass("kata-qemu", "go", "qemu", 60, 2048, _GO),
    ShippedClass("kata-qemu-coco-dev", "go", "qemu", 60, 2048, _GO_COCO),
    ShippedClass("kata-qemu-coco-dev-runtime-rs", "rs", "qemu", 60, 2048, _RS_COCO),
    ShippedClass("kata-qemu-nvidia-cpu", "go", "qemu", 60, 2048, _GO),
    ShippedClass("kata-qemu-nvidia-cpu-runtime-rs", "rs", "qemu", 30, 2048, _RS_NVIDIA),
    ShippedClass("kata-qemu-nvidia-gpu", "go", "qemu", 1200, 8192, _GO),
    ShippedClass("kata-qemu-nvidia-gpu-runtime-rs", "rs", "qemu", 1200, 8192, _RS_NVIDIA),
    ShippedClass("kata-qemu-nvidia-gpu-snp", "go", "qemu", 1200, 8192, _GO_COCO),
    ShippedClass("kata-qemu-nvidia-gpu-snp-runtime-rs", "rs", "qemu", 1200, 8192, _RS_COCO_NVIDIA),
    ShippedClass("kata-qemu-nvidia-gpu-tdx", "go", "qemu", 1200, 8192, _GO_COCO),
    ShippedClass("kata-qemu-nvidia-gpu-tdx-runtime-rs", "rs", "qemu", 1200, 8192, _RS_COCO_NVIDIA),
    ShippedClass("kata-qemu-runtime-rs", "rs", "qemu", 30, 2048, _RS),
    ShippedClass("kata-qemu-se", "go", "qemu", 60, 2048, _GO_COCO),
    ShippedClass("kata-qemu-se-runtime-rs", "rs", "qemu", 30, 2048, _RS_COCO),
    ShippedClass("kata-qemu-snp", "go", "qemu", 60, 2048, _GO_COCO),
    ShippedClass("kata-qemu-snp-runtime-rs", "rs", "qemu", 60, 2048, _RS_COCO),
    ShippedClass("kata-qemu-tdx", "go", "qemu", 60, 2048, _GO_COCO),
    ShippedClass("kata-qemu-tdx-runtime-rs", "rs", "qemu", 60, 2048, _RS_COCO),
)}

# The most any shipped class gives: what a class imagefix does not know might have in force.
HIGHEST_TIMEOUT_S = max(c.timeout_s for c in SHIPPED.values())
HIGHEST_MEMORY_MIB = max(c.memory_mib for c in SHIPPED.values())
_VARIANTS = ("-debug", "-devkit")  # kata-deploy's RuntimeClass variants: the same configuration


def shipped_class(name: str) -> ShippedClass | None:
    """The shipped values of a runtime class, or None for a class Kata 4.1 does not ship."""
    if name in SHIPPED:
        return SHIPPED[name]
    for suffix in _VARIANTS:
        if name.endswith(suffix) and name.removesuffix(suffix) in SHIPPED:
            return SHIPPED[name.removesuffix(suffix)]
    return None


def image_pull_timeout(kernel_params: str | None) -> int:
    """`agent.image_pull_timeout` as the agent reads the kernel command line (the last one wins;
    0 or a value it cannot parse leaves its 1200 s default)."""
    value = DEFAULT_IMAGE_PULL_TIMEOUT
    for param in (kernel_params or "").split():
        key, _, text = param.partition("=")
        if key == IMAGE_PULL_TIMEOUT_PARAM and text.isascii() and text.isdigit() and int(text) > 0:
            value = int(text)
    return value


def with_image_pull_timeout(kernel_params: str | None, seconds: int) -> str:
    """`kernel_params` with `agent.image_pull_timeout=<seconds>`: every other parameter kept in its
    place, an existing value replaced (a drop-in's kernel_params replaces the string whole)."""
    params = [p for p in (kernel_params or "").split() if p.partition("=")[0] != IMAGE_PULL_TIMEOUT_PARAM]
    return " ".join([*params, f"{IMAGE_PULL_TIMEOUT_PARAM}={seconds}"])
