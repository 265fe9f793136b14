"""The budget a Kata command judges with, from plain values: the flags' model, a configuration's own
memory and timeouts where the command line is silent, and the images it must serve (each read once,
however many configurations estimate it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from msgspec.structs import replace

from ..kata.config import KataConfig
from ..model.budget import BudgetEstimate, BudgetModel


@dataclass(frozen=True)
class KataBudget:
    """The model of the flags and settings, and the two Kata values the command line gave: those win
    over what a configuration sets (a settings-file value does not)."""

    model: BudgetModel
    guest_memory_flag: int | None = None
    create_timeout_flag: int | None = None

    def for_config(self, config: KataConfig) -> BudgetModel:
        """The model with the configuration's own memory, timeout and guest pull limit."""
        if config.main.data is None:
            return self.model
        return replace(self.model,
                       guest_memory_mib=self.guest_memory_flag or int(config.memory[0]),
                       create_timeout_s=self.create_timeout_flag or int(config.timeout[0]),
                       image_pull_timeout_s=config.image_pull_timeout)


@dataclass
class ImageSizes:
    """The images a configuration must serve: opened on the first estimate (a bad configuration is
    reported before any image is read), then kept."""

    refs: tuple[str, ...] = ()
    exact: bool = False
    _sizes: list[tuple[str, int, bool]] | None = field(default=None, repr=False)

    def estimates(self, model: BudgetModel) -> list[tuple[str, BudgetEstimate]]:
        """(ref, budget estimate) per image; an image that cannot be read stops the command."""
        if self._sizes is None:
            from ..image.sources import open_image
            from ..registry.options import RegistryOptions

            sizes = []
            for ref in self.refs:
                image = open_image(ref, registry=RegistryOptions(exact=self.exact))
                sizes.append((ref, image.unpacked_size, image.size_estimated))
            self._sizes = sizes
        return [(ref, model.estimate(size, size_estimated=estimated)) for ref, size, estimated in self._sizes]
