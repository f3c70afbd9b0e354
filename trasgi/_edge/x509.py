"""A certificate's subject as an RFC 4514 string, read from its DER bytes.

The ASGI TLS extension reports the client certificate's subject as an
RFC 4514 distinguished name. The standard library's ``ssl`` module gives the
subject only as OpenSSL's long attribute names, without their OIDs or
string types, which RFC 4514 needs; so this module reads the few DER
structures on the way to the subject itself (X.690 encoding, RFC 5280
section 4.1 layout). It is pure: bytes in, text out.
"""

from __future__ import annotations

from collections.abc import Iterator

_SEQUENCE = 0x30
_SET = 0x31
_OID = 0x06
_VERSION = 0xA0  # [0] EXPLICIT, present from X.509 v2 on

#: RFC 4514 section 3: the attribute types written by name; every other type
#: is written as its dotted OID with a hexadecimal value (section 2.4).
SHORT_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.6": "C",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}

#: The ASN.1 string types of the attributes above, and their encodings.
_STRING_CODECS = {
    0x0C: "utf-8",  # UTF8String
    0x13: "ascii",  # PrintableString
    0x16: "ascii",  # IA5String
    0x1A: "ascii",  # VisibleString
    0x14: "latin-1",  # TeletexString, as every TLS library reads it
    0x1E: "utf-16-be",  # BMPString
    0x1C: "utf-32-be",  # UniversalString
}

#: RFC 4514 section 2.4: characters escaped anywhere in a value.
_SPECIAL = frozenset('"+,;<>\\')


class DERError(ValueError):
    """The bytes are not the DER certificate structure expected."""


def _element(data: bytes, at: int) -> tuple[int, int, int]:
    """Read the tag and length at ``at``; return (tag, value start, end)."""
    if at + 2 > len(data):
        raise DERError("truncated element")
    tag, first = data[at], data[at + 1]
    start = at + 2
    if first < 0x80:
        length = first
    else:
        size = first & 0x7F
        if size == 0 or size > 4:
            raise DERError("unsupported length")
        length = int.from_bytes(data[start : start + size], "big")
        start += size
    end = start + length
    if end > len(data):
        raise DERError("truncated element")
    return tag, start, end


def _children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """The elements between ``start`` and ``end``: (tag, value start, end)."""
    at = start
    while at < end:
        tag, value_start, value_end = _element(data, at)
        yield tag, value_start, value_end
        at = value_end


def _oid(value: bytes) -> str:
    """Dotted form of an OID's content bytes (X.690 section 8.19)."""
    numbers: list[int] = []
    current = 0
    for byte in value:
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            numbers.append(current)
            current = 0
    if not numbers:
        raise DERError("empty OID")
    first = numbers[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(n) for n in [*head, *numbers[1:]])


def _escape(text: str) -> str:
    """Escape an attribute value as RFC 4514 section 2.4 requires."""
    last = len(text) - 1
    out: list[str] = []
    for at, char in enumerate(text):
        if char == "\0":
            out.append("\\00")
        elif (
            char in _SPECIAL
            or (at == 0 and char in "# ")
            or (at == last and char == " ")
        ):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def _value(oid: str, data: bytes, at: int) -> str:
    """One attribute value: text for a named type, ``#hex`` of its DER else."""
    tag, start, end = _element(data, at)
    codec = _STRING_CODECS.get(tag)
    if oid in SHORT_NAMES and codec is not None:
        try:
            return _escape(data[start:end].decode(codec))
        except UnicodeDecodeError:
            pass  # not the text its type promises: write the bytes instead
    return "#" + data[at:end].hex()


def _subject_bounds(der: bytes) -> tuple[int, int]:
    """Where the subject Name's content lies in a DER certificate."""
    tag, start, end = _element(der, 0)
    if tag != _SEQUENCE:
        raise DERError("not a certificate")
    tag, start, end = _element(der, start)  # tbsCertificate
    if tag != _SEQUENCE:
        raise DERError("not a certificate")
    fields = list(_children(der, start, end))
    if fields and fields[0][0] == _VERSION:
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject (RFC 5280 4.1).
    if len(fields) < 5 or fields[4][0] != _SEQUENCE:
        raise DERError("no subject")
    return fields[4][1], fields[4][2]


def subject_rfc4514(der: bytes) -> str:
    """The subject of a DER certificate as an RFC 4514 string.

    The relative distinguished names come last-first (RFC 4514 section 2.1),
    so ``CN=alice,O=Example`` for a subject written ``O=Example, CN=alice``.

    Error handling:
        Raises :class:`DERError` when the bytes are not a certificate.
    """
    start, end = _subject_bounds(der)
    names: list[str] = []
    for tag, set_start, set_end in _children(der, start, end):
        if tag != _SET:
            raise DERError("malformed name")
        parts: list[str] = []
        for tag, pair_start, pair_end in _children(der, set_start, set_end):
            oid_tag, oid_start, oid_end = _element(der, pair_start)
            if tag != _SEQUENCE or oid_tag != _OID or oid_end >= pair_end:
                raise DERError("malformed attribute")
            oid = _oid(der[oid_start:oid_end])
            parts.append(f"{SHORT_NAMES.get(oid, oid)}={_value(oid, der, oid_end)}")
        names.append("+".join(parts))
    return ",".join(reversed(names))
