"""
Where a receipt was issued: the seller's address, read from the header rows.

The SROIE ground truth writes it in upper case, its rows joined by a space, without the
phone, fax or registration numbers. It is the rows after the company name, up to a
``TEL``/``GST``/``INVOICE`` row or a little after the postcode; or, when those rows hold
none, a block elsewhere that opens like an address (`find_address`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ._company import company_rows
from ._header import (
    ADDRESS_OPENING,
    ADDRESS_STOP,
    ADDRESS_WORD,
    GST_LABEL,
    HEADER_ROWS,
    LEGAL_END,
    LEGAL_SUFFIX,
    LOT_MISREAD,
    PLACES,
    POSTCODE,
    REGISTRATION,
    SPACED_INITIALS,
    clean_row,
    is_noise,
    is_registration,
    opens_address,
)
from ._vocabulary import clean_header_text

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["find_address"]

_ADDRESS_SKIP = re.compile(rf"FORMERLY|LICEN[SC]EE|{GST_LABEL}|\bSST\b|\bREG\b|COMPANY NO|\bTAX\b")
_FORMERLY = re.compile(r"FORMERLY|PREVIOUSLY|\bEX\b")

# A postcode with an O read for a zero ("3O01O", "58OOO"): five of 0-9 and O, starting
# with a digit, two digits or more.
_POSTCODE_WITH_O = re.compile(
    r"\b(?=\d)(?=(?:O*\d){2})(?=[\dO]*O)[\dO]{5}\b"
    # Or with one digit before its town: "8OOOO JOHOR BAHRU".
    r"|\b\dO{4}(?= [A-Z]{3})"
    # Or its first 0 read as O: "O5000 ALOR SETAR".
    r"|\bO(?=\d{4} [A-Z])"
)
# A postcode before its town with an I or L read for a 1, or an S for a 5: "55I00 KUALA
# LUMPUR", "622S0 PUTRAJAYA", "2S300 KUANTAN"; or glued to its town when it ends in a
# digit ("55I00KUALA": the town's first letters are not taken for the postcode's).
_POSTCODE_MISREAD = re.compile(
    r"(?<!LOT )(?<!PT )\b\d(?=[\dILS]{4} [A-Z]|[\dILS]{3}\d[A-Z]{3})"
    r"(?=(?:[ILS]*\d){3})[\dILS]{4}"
)
_POSTCODE_DIGITS = str.maketrans("ILS", "115")
# A postcode glued to its town: "52100KUALA LUMPUR".
_GLUED_POSTCODE = re.compile(r"(?<![\w-])(\d{5})(?=[A-Z]{3,})")
# An O between a digit and a digit, a slash or a comma: "JALAN 1O/2", "NO. 3O,".
_O_IN_NUMBER = re.compile(r"(?<=\d)O(?=[\d/,])|(?<=[\dA-Z][/-])O(?=\d)")
# "P.0. BOX": a post office box's O read as a zero.
_PO_BOX = re.compile(r"(?<=\bP\.)( ?)0(?=\. ?BOX\b)")
# An S read for a 5 after a digit in a house number: "NO. 1S2,", "33 & 3S,".
_S_IN_NUMBER = re.compile(r"(?<=\b\d)S(?=\d*,)|(?<=\b\d\d)S(?=\d*,)")
# A federal territory's initials with their last full stop lost ("87000 W.P LABUAN",
# "LABUAN F.T", "W. P"), or the space after them ("W.P.LABUAN").
_TERRITORY = re.compile(r"\b(W\. ?P|F\. ?T)(?:\.(?=[A-Z])|\.? (?=[A-Z])|\.?$)")


def _territory(match: re.Match[str]) -> str:
    """The initials as printed whole: "W.P.", then a space unless they end the address."""
    end = "" if match.end() == len(match.string) else " "
    return match.group(1).replace(" ", "") + "." + end


_PLACE = re.compile(rf"\b(?:{PLACES})\b")

# A full stop after a word and before the postcode and its town is a comma misread:
# addresses print "TAMAN X, 81200 JOHOR BAHRU". An abbreviation before a number ("NO. ",
# "LOT. ", "PTD. ") is under four letters, and a lot number is not followed by a town.
_STOP_BEFORE_POSTCODE = re.compile(
    r"(?<=[A-Z]{4})\.(?= \d{5} [A-Z])"
    # ... or anywhere before it after a word of five letters or more, but for the few
    # abbreviations that long: "PERSIARAN SETIA DAGANG. SETIA ALAM, 40170" (not "KAW.
    # PERIND. BALAKONG").
    r"|(?<=[A-Z]{5})(?<!PERIND)(?<!CONDO)(?<!PERSN)(?<!INDUS)\.(?= [A-Z]{3}.*\b\d{5}\b)"
)
# So is one after the postcode's town, before the state: "41050 KLANG. SELANGOR".
_STOP_BEFORE_STATE = re.compile(
    r"(\d{5} [A-Z][A-Z ,]{2,29})\.(?= (?:SELANGOR|JOHOR|KEDAH|KELANTAN|MELAKA|NEGERI|PAHANG|"
    r"PERAK|PERLIS|PULAU PINANG|SABAH|SARAWAK|TERENGGANU)\b)"
)
# So is one after a house or lot number, before its street: "LOT 1-3. JALAN BUNGA",
# "1851-B. JALAN KPB 6" (addresses print "NO. 27, JALAN ...").
_STOP_BEFORE_STREET = re.compile(
    r"(?<=\d)(?<!\d\.\d)((?:[A-Z]|-[A-Z0-9]+)*) ?\.(?= (?:JALAN|JLN|JL|LORONG|LRG|LEBUH|PERSIARAN|"
    r"LINGKARAN)\b)"
)
# A stray mark beside a comma: "TAMAN X,, 43000", "BANGSAR BARU,. 59100".
_STRAY_STOP = re.compile(r",[.,]+|\.,")

# A stall, kiosk or counter and its number: "STALL 12 - CHICKEN RICE", "GERAI 5".
_STALL = re.compile(r"^(?:STALL|GERAI|KIOSK|KAUNTER|COUNTER|BOOTH)\b\.?\s*(?:NO\.?\s*)?[A-Z]?\d")
# Below the postcode, a row that says what the paper is, or who it is for, rather than
# where the shop is: "*** REPRINT ***", "CUSTOMER COPY", "TABLE 12", "HALAL".
_NOT_PLACE = re.compile(
    r"[*=~]|\b(?:COPY|REPRINT|DUPLICATE|ORIGINAL|QUOTATION|HALAL|TABLE|MEJA|WELCOME|"
    r"SELAMAT DATANG|THANK|TERIMA KASIH|MEMBER|ORDER|CUSTOMER|PELANGGAN|SALINAN)\b"
)
# "BRANCH: NO. 12, JALAN ...": the branch's label before its address.
_BRANCH_LABEL = re.compile(r"^(?:BRANCH|OUTLET|CAWANGAN|STORE|KEDAI)\s*:\s*")


def _clean_address(address: str) -> str:
    """
    OCR clean-up of an address: accents, vocabulary, ``10T`` for ``LOT``, an O or an S
    in a number (``58OOO``, ``1O/2``, ``LOT G-O5``, ``NO. 1S2``, ``2S300``), an I, L or
    S in a postcode before its town (``55I00``, ``622S0``), a postcode glued to its town
    (``52100KUALA``), ``W.P``/``F.T`` for ``W.P.``/``F.T.``, ``NILE 4`` for ``MILE 4``,
    ``P.0. BOX``, a ``BRANCH:`` label, a stray mark beside a comma (``,,``), a comma read
    as a full stop before the postcode (``TAMAN SRI PUTRA. 81200``, ``SETIA DAGANG.
    SETIA ALAM, 40170``) or the state (``41050 KLANG. SELANGOR``), a last comma.
    """
    address = _POSTCODE_WITH_O.sub(lambda m: m.group(0).replace("O", "0"), address)
    address = _POSTCODE_MISREAD.sub(lambda m: m.group(0).translate(_POSTCODE_DIGITS), address)
    address = _GLUED_POSTCODE.sub(r"\1 ", address)
    address = _MILE.sub("MILE", _TERRITORY.sub(_territory, address))
    address = _S_IN_NUMBER.sub("5", _O_IN_NUMBER.sub("0", address))
    address = _PO_BOX.sub(r"\1O", address)
    address = LOT_MISREAD.sub("LOT", clean_header_text(_BRANCH_LABEL.sub("", address)))
    address = SPACED_INITIALS.sub(r"\1.", address)
    address = _STOP_BEFORE_STREET.sub(r"\1,", _STRAY_STOP.sub(",", address))
    address = _STOP_BEFORE_STATE.sub(r"\1,", address)
    return _STOP_BEFORE_POSTCODE.sub(",", address).rstrip(" ,")


def _names_company(row: str) -> bool:
    """Whether ``row`` holds a registration number in brackets: a company's row."""
    match = REGISTRATION.search(row)
    return match is not None and match.group(0).lstrip().startswith("(")


def _holds_address(rows: Sequence[str]) -> bool:
    """Whether some row holds a postcode or a word only addresses hold."""
    return any(POSTCODE.search(row) or ADDRESS_WORD.search(row) for row in rows)


def _may_be_address(row: str) -> bool:
    """Whether ``row`` holds a digit or a word only addresses hold."""
    return bool(re.search(r"\d", row) or ADDRESS_WORD.search(row))


def _from_opening(rows: list[str]) -> list[str]:
    """
    ``rows`` from the row that opens the address (``NO 12A, JALAN ...``) when the rows
    before it are no part of it: they hold neither a digit nor a word of an address (a
    doctor's name, a branch under the name), or neither a comma nor a postcode (an
    outlet's name: ``GIANT SHAH ALAM 2``, ``SHELL STESEN JALAN MATANG``). The parts of
    an address are printed with commas (``LEVEL 6, BANGUNAN TH,``). A building's name
    just above the opening row is its part, comma or not (``WISMA ABC`` over ``G-12,
    JALAN ...``).
    """
    if rows and _HOUSE_OR_LOT.match(LOT_MISREAD.sub("LOT", rows[0])):
        return rows  # "LOT 1234 JALAN BESAR" / "BATU 5, KAMPUNG X,": it opened already
    for index, row in enumerate(rows[1:], start=1):
        if ADDRESS_OPENING.match(LOT_MISREAD.sub("LOT", row)):
            before = rows[:index]
            if not any(map(_may_be_address, before)) or not any(
                "," in r or POSTCODE.search(r) for r in before
            ):
                return rows[index - 1 :] if _BUILDING_ROW.match(before[-1]) else rows[index:]
            break
    return rows


# A building's name: "WISMA ABC", "MENARA KLH", "KOMPLEKS BELIA".
_BUILDING_ROW = re.compile(r"^(?:WISMA|MENARA|KOMPLEKS|BANGUNAN)\b")
# A first row that opens with a house's or a lot's number.
_HOUSE_OR_LOT = re.compile(r"^(?:NO|LOT|UNIT|PTD?)\b\.?\s*[:.]?\s*\d")
# "NILE 4, JALAN UTARA": a milestone's MILE with its M read as N (NILE alone is a name).
_MILE = re.compile(r"\bNILE(?= ?\d)")

# A document's title and nothing else: "TAX INVOICE", "RESIT PARKIR / PARKING RECEIPT".
_TITLE = re.compile(
    r"^(?:(?:TAX|CASH|SIMPLIFIED|OFFICIAL|PARKING|PARKIR|RESIT|BILL|SALES?|RECEIPT|"
    r"INVOICE|INVOIS|CUKAI|JUALAN|[/&-])\s*)+$"
)


def _is_title(row: str) -> bool:
    return bool(_TITLE.match(row))


def _address_follows(rows: Sequence[str]) -> bool:
    """Whether ``rows`` open with an address: a street or a place in the first two rows,
    and the first row opens it or holds a postcode or the place."""
    if not rows or ADDRESS_STOP.search(rows[0]) or not any(map(_PLACE.search, rows[:2])):
        return False
    return opens_address(rows) or bool(POSTCODE.search(rows[0]) or _PLACE.search(rows[0]))


# A document's number, alone or before a label: "NO: 12033", "No: SI-0098 DATE: ...";
# "INV N0. CF-27731" (a label word before its NO.); not a house number ("NO: 28, JALAN").
_DOCUMENT_NUMBER = re.compile(
    r"^(?:(?:[A-Z]+\.? )?N[O0] ?[:#]|[A-Z]+\.? N[O0]\.) ?(?=[A-Z\d/-]*(?:\d{4}|[A-Z]-?\d))"
    r"[A-Z\d/-]+(?:\s|$)"
)


def _until_stop(row: str, after_postcode: bool) -> tuple[str, bool]:
    """
    ``(row, False)``, or the part of ``row`` before a ``TEL``/``FAX``/... label that
    follows a postcode on it, or a state before a phone under the postcode's row, and
    ``True``: "34000 TAIPING, PERAK. TEL: 05-807 1234" and "SELANGOR D.E TEL: 03-1234
    5678" end the address with their first part ("HAJI ABDUL H/P:" is no state).
    """
    stop = ADDRESS_STOP.search(row)
    if stop is None or stop.start() == 0:
        return row, False
    before = row[: stop.start()]
    phone = _PHONE.match(row, stop.start()) is not None
    state = phone and _STATE.fullmatch(before.strip()) is not None
    if POSTCODE.search(before) or (after_postcode and state):
        return before.rstrip(), True
    return row, False


# A state as printed under the postcode: its words, an honorific, initials, the country.
_STATE = re.compile(
    r"(?:(?:(?:SELANGOR|JOHOR|KEDAH|KELANTAN|MELAKA|MALACCA|NEGERI|SEMBILAN|PAHANG|PERAK|"
    r"PERLIS|PULAU|PINANG|PENANG|SABAH|SARAWAK|TERENGGANU|KUALA|LUMPUR|LABUAN|PUTRAJAYA|"
    r"WILAYAH|PERSEKUTUAN|DARUL|EHSAN|TAKZIM|RIDZUAN|MAKMUR|KHUSUS|AMAN|IMAN|NAIM|"
    r"MALAYSIA)\b|[A-Z](?![A-Z]))[\s.,]*)+"
)
# A phone's label: "TEL", "FAX", "H/P", "PHONE".
_PHONE = re.compile(r"[T1I][E3]L|PHONE|HANDPHONE|FAX|H/?P\b")


def find_address(rows: Sequence[str]) -> str | None:
    """
    The seller's address: the header rows after the company name, upper case.

    Registration numbers and "formerly known as" rows between the name and the address
    are skipped. The address ends before a ``TEL``/``GST``/``INVOICE``/``DATE`` row, or
    at most two short rows after the row with the five-digit postcode (the state or a
    branch name often follows it; a row with a phone-length number does not count).
    When the rows after the name hold no address, the first block elsewhere that opens
    like one (``NO. 45, JALAN ...`` over a postcode row) is the address: some shops
    print it above their name or at the foot of the receipt.

    Args:
        rows: the receipt text, one visual row per item.

    Returns:
        The address rows joined with a space, or ``None``.
    """
    span = company_rows(rows)
    start = span[1] + 1 if span else 0
    block = [clean_row(row) for row in rows[start : start + HEADER_ROWS]]
    found = _address_in(_without_head_office(block))
    if found is not None:
        return found
    upper = [clean_row(row) for row in rows]  # the rest of the receipt, only when needed
    for index in range(len(upper)):
        if span and span[0] <= index <= span[1]:
            continue
        if opens_address(upper[index:]) or _one_row_address(upper[index]):
            end = span[0] if span and index < span[0] else index + HEADER_ROWS
            found = _address_in(upper[index:end])
            # An item's code over a barcode opens like an address, but names no place.
            return found if found is not None and _PLACE.search(found) else None
    return None


# A head office's or registered office's label before its address.
_HEAD_OFFICE = re.compile(
    r"^(?:HEAD OFFICE|HQ|H\.Q\.?|REGISTERED OFFICE|REG(?:D|\.)? OFFICE|IBU PEJABAT|"
    r"PEJABAT (?:UTAMA|BERDAFTAR))\s*[:-]?\s*"
)


def _without_head_office(block: list[str]) -> list[str]:
    """
    ``block`` without its head office's address when the branch's follows it (the sale
    was made at the branch: "HEAD OFFICE: ..., 41050 KLANG" / "OUTLET: ..." / "NO. 23,
    ..., 41200 KLANG"), or with the label cut off when the head office's is the only
    address printed.
    """
    for index, row in enumerate(block):
        label = _HEAD_OFFICE.match(row)
        if label is None:
            continue
        end = next((j for j in range(index, len(block)) if POSTCODE.search(block[j])), None)
        if end is not None and any(map(POSTCODE.search, block[end + 1 :])):
            return block[:index] + block[end + 1 :]
        return [*block[:index], row[label.end() :], *block[index + 1 :]]
    return block


def _one_row_address(row: str) -> bool:
    """A whole address on one row: a street or place and a postcode, no label."""
    return bool(POSTCODE.search(row) and _PLACE.search(row) and not ADDRESS_STOP.search(row))


# A lot's or unit's code and its comma, alone on a row: "TB 4412,", "G-08,", "S117,".
_UNIT_CODE = re.compile(r"^(?:[A-Z]{1,4}\.?\s*)?[A-Z]?\d[\dA-Z]*(?:[./-][\dA-Z]+)*\s*,$")


def _wrapped_part(block: list[str], index: int) -> bool:
    """Whether ``block[index]`` is a lot's or unit's code wrapped before its street, as
    narrow paper prints it: the code and a comma, and a word only addresses hold on the
    next row (``TB 4412,`` / ``JALAN BAJAU,``, ``S117,`` / ``SECOND FLOOR,``); not a
    postcode (``10250,``)."""
    return (
        _UNIT_CODE.match(block[index]) is not None
        and not POSTCODE.search(block[index])
        and index + 1 < len(block)
        and ADDRESS_WORD.search(block[index + 1]) is not None
        and not is_registration(block[index])
    )


def _address_in(block: list[str]) -> str | None:
    """The address in ``block``, the upper-cased rows after the company name."""
    picked: list[str] = []
    after_postcode = 0
    skip_next = False
    for index, whole in enumerate(block):
        row, last = _until_stop(whole, after_postcode > 0)
        stop = ADDRESS_STOP.search(row) or _DOCUMENT_NUMBER.match(whole) or _is_title(row)
        if not picked:
            if skip_next or _FORMERLY.search(row):
                # "formerly known as / OLD NAME SDN BHD": the old name is not the address;
                # a row that holds the old name too ends the skip.
                skip_next = bool(_FORMERLY.search(row)) and not LEGAL_END.search(row)
                continue
            opening = opens_address(block[index:]) or _wrapped_part(block, index)
            if not opening and (
                is_noise(row)
                or _ADDRESS_SKIP.search(row)
                or is_registration(row)
                or _names_company(row)
                or LEGAL_SUFFIX.search(row)
            ):
                continue
            if stop:
                if _is_title(row) and _address_follows(block[index + 1 :]):
                    continue  # "PARKING RECEIPT" between the name and its address
                return None
        elif _names_company(row) and not after_postcode and not POSTCODE.search(row):
            # "MF TELECOMMUNICATION (SA0456712-K)": the legal name under a brand, with
            # its number; the address starts below it.
            picked, after_postcode = [], 0
            continue
        elif stop or (
            is_noise(row)
            and not POSTCODE.search(row)
            and not (_PLACE.search(row) and not after_postcode)  # "JLN 2/3," is a part
        ):
            # A row too short to read as words may open the address, or its street
            # after a mall's rows: "NO 12A," or "NO 3," alone on a row of narrow paper.
            opening = not stop and not after_postcode and opens_address(block[index:])
            if not opening and (stop or _holds_address(picked)):
                break
            if not opening or not _holds_address(picked):
                # The rows so far were no address (a name's last row, a shop's name
                # above its registration number): look on past this row, or from it.
                picked, after_postcode = [], 0
                if not opening:
                    continue
        if after_postcode:
            # The state, a district or a branch name may follow the postcode row; a
            # phone number (many digits), a long row or a label ("MESIN NO: 12") does
            # not belong to the address.
            digits = sum(char.isdigit() for char in row)
            if digits > 4 or len(row) > 40 or ":" in row or after_postcode > 2:
                break
            if _STALL.match(row) or _NOT_PLACE.search(row):
                break  # "STALL 12 - CHICKEN RICE": a food court's stall under its address
            after_postcode += 1
        elif POSTCODE.search(row):
            after_postcode = 1
        picked.append(row)
        if last:
            break
    picked = _from_opening(picked)
    if not _holds_address(picked):
        return None  # an order number, a car park's times: no address at all
    address = re.sub(r"\s+", " ", " ".join(picked).replace("|", " ")).strip()
    return _clean_address(address) or None
