"""The format registry: one declaration per UB header (see :mod:`ubpkt.formats.core`)."""
from .core import HEADERS, EncodeError, Field, Header, get, register  # noqa: F401
from . import carriers, link, management, network, transaction, transport  # noqa: F401
