"""The operator CLI's stack fixture (tests.cli.operator_stack), for every test here."""

from tests.cli.operator_stack import stack  # noqa: F401
