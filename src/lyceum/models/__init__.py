"""Every ORM table, one module per aggregate, on one `Base` with a naming convention."""

from lyceum.models.base import Base

__all__ = ["Base"]
