"""A workspace-local module imported by gen.py: editing it must rerun data:raw."""


def banner() -> str:
    return "# numbers"
