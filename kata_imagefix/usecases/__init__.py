"""The use cases the command line calls, one call each (flags -> one call -> print): above the rules and
the models, below cli/. They take plain values and dataclasses and return result dataclasses; they never
import click or rich and never print."""
