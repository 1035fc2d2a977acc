"""Placeholder: SkyServer fetch arrives in the next commit."""


def add_arguments(p) -> None:
    pass


def run(args) -> int:
    raise NotImplementedError
