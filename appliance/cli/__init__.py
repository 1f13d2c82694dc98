"""`doorward`: the command line, one module per group of sub-commands. It imports the
domain; nothing in the domain imports it."""

from .common import CliError
from .main import build_parser, main

__all__ = ["CliError", "build_parser", "main"]
