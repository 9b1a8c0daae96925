"""The warehouse's schema error, below both backends: ``warehouse`` (which dispatches to the Delta
backend) and ``delta_store`` (which raises it) import it from here, so neither imports the other
back. ``warehouse.SchemaMismatchError`` is the same class."""


class SchemaMismatchError(ValueError):
    """A frame's columns do not match the table's declared schema."""
