"""Every ORM table, one module per aggregate, on one `Base` with a naming convention."""

from lyceum.models.base import Base
from lyceum.models.identity import LoginSession, OneTimeToken, RecoveryCode, RefreshToken, User

__all__ = ["Base", "LoginSession", "OneTimeToken", "RecoveryCode", "RefreshToken", "User"]
