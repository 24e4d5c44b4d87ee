"""UB network layer (UB 2.0 ch. 5)."""
from .icrc import icrc  # noqa: F401
