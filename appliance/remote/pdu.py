"""Owns decoding received SMS (SMS-DELIVER PDUs, 3GPP TS 23.040) read in PDU mode.

Incoming messages are read in PDU mode, not text mode: in text mode a message whose body is
a line "OK" or "+CMTI: ..." would be read as the modem's own answer. A PDU is hex, so the
sender's text can never be mistaken for the modem talking.
"""

from __future__ import annotations

from dataclasses import dataclass

# GSM 03.38 default alphabet (index = septet value); the escape (0x1B) extension table is
# reduced to the characters a command could contain
GSM7 = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXT = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~",
            0x3E: "]", 0x40: "|", 0x65: "€"}  # fmt: skip
assert len(GSM7) == 128


class PduError(ValueError):
    """Not a well-formed SMS-DELIVER PDU; the message says what was wrong."""


@dataclass(frozen=True)
class Delivered:
    sender: str  # "+447700900123", a national number, or an alphanumeric name
    sender_type: str  # "international" | "national" | "alphanumeric" | "other"
    text: str
    timestamp: str  # "YY-MM-DD hh:mm:ss" as the network stamped it
    concatenated: bool  # a part of a longer message (user data header present)


def _unpack7(data: bytes, septets: int, skip_bits: int = 0) -> list[int]:
    bits = int.from_bytes(data, "little")
    return [(bits >> (skip_bits + 7 * i)) & 0x7F for i in range(septets)]


def _gsm7_text(septets: list[int]) -> str:
    out = []
    esc = False
    for s in septets:
        if esc:
            out.append(GSM7_EXT.get(s, "?"))
            esc = False
        elif s == 0x1B:
            esc = True
        else:
            out.append(GSM7[s])
    return "".join(out)


def _semi_octets(data: bytes) -> str:
    digits = []
    for b in data:
        for nib in (b & 0x0F, b >> 4):
            if nib == 0x0F:
                continue
            digits.append("0123456789*#abc"[nib])
    return "".join(digits)


def _alphabet(dcs: int) -> int:
    """The alphabet a data coding scheme names (3GPP TS 23.038 clause 4)."""
    if dcs & 0x80 == 0x00:  # 00xx general data coding, 01xx the same marked for deletion
        return (dcs >> 2) & 0x03
    if dcs & 0xF0 == 0xF0:  # data coding / message class
        return 1 if dcs & 0x04 else 0
    return 2 if dcs & 0xF0 == 0xE0 else 0  # message waiting groups


def decode_deliver(hex_pdu: str) -> Delivered:
    """Decode one SMS-DELIVER PDU as AT+CMGR/AT+CMGL give it in PDU mode (with its SMSC)."""
    try:
        raw = bytes.fromhex(hex_pdu.strip())
    except ValueError as exc:
        raise PduError(f"not hex: {exc}") from None
    try:
        i = raw[0] + 1  # skip the SMSC field
        first = raw[i]
        i += 1
        if first & 0x03 != 0:
            raise PduError(f"not an SMS-DELIVER (message type {first & 0x03})")
        udhi = bool(first & 0x40)
        oa_digits, toa = raw[i], raw[i + 1]
        i += 2
        oa_len = (oa_digits + 1) // 2
        oa = raw[i : i + oa_len]
        i += oa_len
        ton = (toa >> 4) & 0x07
        if ton == 0x5:
            sender = _gsm7_text(_unpack7(oa, oa_digits * 4 // 7))
            sender_type = "alphanumeric"
        else:
            number = _semi_octets(oa)
            sender_type = {1: "international", 2: "national"}.get(ton, "other")
            sender = ("+" if ton == 1 else "") + number
        i += 1  # PID
        dcs = raw[i]
        i += 1
        ts = _semi_octets(raw[i : i + 6])
        timestamp = f"{ts[0:2]}-{ts[2:4]}-{ts[4:6]} {ts[6:8]}:{ts[8:10]}:{ts[10:12]}"
        i += 7
        udl = raw[i]
        i += 1
        ud = raw[i:]
        alphabet = _alphabet(dcs)  # 0 GSM 7-bit, 1 8-bit data, 2 UCS2
        header = 0
        if udhi:
            header = ud[0] + 1
        if alphabet == 0:  # GSM 7-bit: udl counts septets, the header included
            skip_bits = (7 - (header * 8) % 7) % 7 if header else 0
            skip_septets = (header * 8 + skip_bits) // 7
            septets = _unpack7(ud[header:], udl - skip_septets, skip_bits)
            if len(ud) * 8 < udl * 7:
                raise PduError("user data shorter than its length")
            text = _gsm7_text(septets)
        elif alphabet == 2:  # UCS2: udl counts octets
            body = ud[header:udl]
            if len(ud) < udl:
                raise PduError("user data shorter than its length")
            text = body.decode("utf-16-be", errors="replace")
        else:
            text = ud[header:udl].decode("latin-1")
    except IndexError:
        raise PduError("PDU ends early") from None
    return Delivered(sender, sender_type, text, timestamp, udhi)
