"""imagefix: get container images ready for Kata Containers (kata-qemu-tdx)."""

__version__ = "0.1.0"
