"""Public names of ``import ubpkt`` stay what they are whatever was imported before."""
import importlib

import ubpkt
from ubpkt.record import LINKTYPE_ETHERNET


def test_dissect_is_callable_even_after_the_package_was_imported():
    importlib.import_module("ubpkt.dissect")       # binds the package under ubpkt.dissect
    from ubpkt import dissect
    frame = dissect(b"\x00" * 60, LINKTYPE_ETHERNET)
    assert frame.layers[0] == "eth"
    assert ubpkt.dissect(b"\x00" * 60, LINKTYPE_ETHERNET).layers == frame.layers
