"""Helpers of the scapy-layer tests: scapy packets seen as ubpkt records and encoder input."""
from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from ubpkt.formats.core import value_to_text
from ubpkt.scapy import UBPacket


def layers_of(pkt):
    out = []
    while pkt:
        out.append(pkt)
        pkt = pkt.payload
    return out


def header_fields(layer: UBPacket, explicit_only: bool = False) -> dict:
    """Header field name -> record value (text formats as text) of one generated layer."""
    h = layer.ub_header
    out = {}
    for f in h.fields:
        if explicit_only and f.name not in layer.fields:
            continue
        v = layer.getfieldval(f.name)
        out[f.name] = value_to_text(f.fmt, v, f.bits) if f.fmt != "int" else v
    return out


def record_of(pkt, explicit_only: bool = False) -> dict:
    """The ``ub.<prefix>.<field>`` values of every UB header layer, repeated keys as lists (the
    way ``ubpkt.dissect`` records them)."""
    rec: dict = {}
    multi: set = set()
    for layer in layers_of(pkt):
        h = getattr(layer, "ub_header", None)
        if h is None:
            continue
        vals = header_fields(layer, explicit_only)
        for key, f in zip(h.keys, h.fields):
            if f.name not in vals:
                continue
            v = vals[f.name]
            if key not in rec:
                rec[key] = v
            elif key in multi:
                rec[key].append(v)
            else:
                rec[key] = [rec[key], v]
                multi.add(key)
    return rec


def encoder_layers(pkt, auto: bool = True) -> list:
    """``ubpkt.encode.encode_layers`` input describing ``pkt`` (a dissected scapy packet); UB
    auto fields (lengths, padding) are left unset when ``auto``; trailers are not listed."""
    out = []
    for layer in layers_of(pkt):
        if isinstance(layer, UBPacket):
            h = layer.ub_header
            if h is None:                           # a run of bytes
                (name, value), = ((f.name, layer.getfieldval(f.name))
                                  for f in layer.fields_desc)
                out.append((layer.ub_layer, {name: value}))
                continue
            vals = {f.name: (None if (auto and f.auto) else layer.getfieldval(f.name))
                    for f in h.fields}
            out.append((layer.ub_layer, vals))
        elif isinstance(layer, Ether):
            out.append(("eth", {"dst": layer.dst, "src": layer.src, "type": layer.type}))
        elif isinstance(layer, Dot1Q):
            out.append(("vlan", {"priority": layer.prio, "dei": layer.dei, "id": layer.vlan,
                                 "etype": layer.type}))
        elif isinstance(layer, IP):
            out.append(("ip", {"version": layer.version, "hdr_len": layer.ihl,
                               "dscp": layer.tos >> 2, "ecn": layer.tos & 3, "len": layer.len,
                               "id": layer.id, "flags": int(layer.flags),
                               "frag_offset": layer.frag, "ttl": layer.ttl,
                               "proto": layer.proto, "checksum": layer.chksum,
                               "src": layer.src, "dst": layer.dst}))
        elif isinstance(layer, IPv6):
            out.append(("ipv6", {"version": layer.version, "tclass": layer.tc, "flow": layer.fl,
                                 "plen": layer.plen, "nxt": layer.nh, "hlim": layer.hlim,
                                 "src": layer.src, "dst": layer.dst}))
        elif isinstance(layer, UDP):
            out.append(("udp", {"srcport": layer.sport, "dstport": layer.dport,
                                "length": layer.len, "checksum": layer.chksum}))
        elif isinstance(layer, Raw):
            out.append(("data", {"data": bytes(layer.load)}))
        else:
            raise AssertionError(f"no encoder layer for {type(layer).__name__}")
    return out
