"""`python -m ilrs_ops` is `ilrs-ops`."""

from ilrs_ops.cli import app

app()
