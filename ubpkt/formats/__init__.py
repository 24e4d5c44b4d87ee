"""The format registry: one declaration per UB header (see :mod:`ubpkt.formats.core`), the
packet grammar that chains them (:mod:`ubpkt.formats.grammar`) and the derived record fields
(:mod:`ubpkt.formats.derived`)."""
from .core import HEADERS, EncodeError, Field, Header, get, register  # noqa: F401
from . import carriers, link, management, network, transaction, transport  # noqa: F401
from . import phy  # noqa: F401  (lane-level blocks, after the packet headers)
from . import derived, grammar  # noqa: F401
