"""KIF301-KIF304 on fake subjects: Kata TOML texts (main file and drop-ins) parsed in memory."""

from __future__ import annotations

import pytest

from kata_imagefix.kata.config import KataConfig, detect_runtime
from kata_imagefix.kata.toml_lines import parse_toml
from kata_imagefix.model.budget import BudgetModel
from kata_imagefix.rules import catalogue
from kata_imagefix.rules.kata_subject import KataSubject

CATALOGUE = catalogue()  # every rule loaded: the rules are imported by target, on demand

GO = "[hypervisor.qemu]\ndefault_memory = 2048\n[factory]\n{factory}[runtime]\n{runtime}"
RS = '[hypervisor.qemu]\n[hypervisor.qemu.factory]\n{factory}[agent.kata]\ndial_timeout_ms = 10\n{agent}' \
     '[runtime]\nname = "virt_container"\n'


def subject(text: str, *dropins: str, images: tuple = ()) -> KataSubject:
    main = parse_toml(text, "configuration.toml")
    runtime, why = detect_runtime(main)
    extra = [parse_toml(d, f"config.d/{i}.toml") for i, d in enumerate(dropins)]
    config = KataConfig(main, extra, runtime, why)
    model = BudgetModel(create_timeout_s=int(config.timeout[0]), guest_memory_mib=int(config.memory[0])) \
        if config.loads else BudgetModel()  # what `kata check` does: the config's own values
    return KataSubject(config, [(ref, model.estimate(size)) for ref, size in images])


KEY = "create_container_timeout = {}\n"
CLH = "[hypervisor.clh]\ndefault_memory = 4096\n"
MB = 10**6
CASES = [
    ("KIF301", subject(GO.format(factory=KEY.format(120), runtime=KEY.format(60))), True),
    ("KIF301", subject(GO.format(factory="", runtime=KEY.format(60)), "[factory]\n" + KEY.format(9)), True),
    ("KIF301", subject(RS.format(factory=KEY.format(120), agent=KEY.format(60))), True),
    ("KIF301", subject(GO.format(factory="", runtime=KEY.format(60))), False),
    ("KIF302", subject(GO.format(factory="", runtime=KEY.format(60)) + "[factory]\n"), True),
    ("KIF302", subject(GO.format(factory="", runtime=KEY.format('"abc"'))), True),
    ("KIF302", subject(GO.format(factory="", runtime=KEY.format(60))), False),
    ("KIF303", subject(GO.format(factory="", runtime=KEY.format(60)), images=(("big", 600 * MB),)), True),
    ("KIF303", subject(GO.format(factory="", runtime=KEY.format(120)), images=(("big", 600 * MB),)), False),
    ("KIF304", subject(GO.format(factory="", runtime="")), True),
    ("KIF304", subject(GO.format(factory="", runtime=""), "[runtime]\n" + KEY.format(60)), False),
    ("KIF304", subject(RS.format(factory="", agent="")), False),
    ("KIF305", subject(GO.format(factory="", runtime=KEY.format(60)), CLH), True),
    ("KIF305", subject(GO.format(factory="", runtime=KEY.format(60)), CLH.replace("clh", "qemu")), False),
    ("KIF305", subject(RS.format(factory="", agent=""), CLH), False),
]


@pytest.mark.parametrize(("rule_id", "kata", "fires"), CASES,
                         ids=[f"{c[0]}-{'fires' if c[2] else 'quiet'}-{i}" for i, c in enumerate(CASES)])
def test_kata_rule(rule_id, kata, fires):
    found = [f for f in CATALOGUE[rule_id].check(kata) if f.rule == rule_id]
    assert bool(found) == fires, found
    for finding in found:
        assert finding.message and finding.fix and finding.file
