"""Identity numbers of complainants: validation (Art. 13) and masking (Art. 22).

Validators answer only "is this well formed": a resident identity number (GB 11643-1999) or a
unified social credit code (GB 32100-2015). They do not normalise input; callers strip spaces
before asking. Masks hide personal data in projections and logs that do not need it.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from itertools import pairwise

MASK_CHARACTER = "*"

_RESIDENT_ID_SHAPE = re.compile(r"[0-9]{17}[0-9Xx]")
# GB 11643-1999: weight of position i (1-based, left to right) is 2^(18-i) mod 11.
_RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
# Check character indexed by (weighted sum mod 11), per the standard's table.
_RESIDENT_ID_CHECK_CHARACTERS = "10X98765432"
# Province-level prefixes of GB/T 2260 area codes; 81, 82 and 83 are used by the residence
# permits of Hong Kong, Macao and Taiwan residents, which share this number format.
_PROVINCE_CODES = frozenset(
    {
        "11", "12", "13", "14", "15",
        "21", "22", "23",
        "31", "32", "33", "34", "35", "36", "37",
        "41", "42", "43", "44", "45", "46",
        "50", "51", "52", "53", "54",
        "61", "62", "63", "64", "65",
        "71", "81", "82", "83",
    }
)  # fmt: skip

USCC_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUES = {character: value for value, character in enumerate(USCC_CHARACTERS)}
# GB 32100-2015: weight of position i (0-based) is 3^i mod 31.
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def is_valid_resident_id(number: str, today: date | None = None) -> bool:
    """Whether `number` is a well-formed 18-character mainland resident identity number.

    Checks, per GB 11643-1999: 17 ASCII digits and a check character (a digit, or X / x for 10)
    that satisfies ISO 7064 MOD 11-2; an area code whose first two digits are a province-level
    code; and a birth date (characters 7–14, YYYYMMDD) that is a real date and, when `today` is
    given, not after it. The retired 15-digit format is not accepted.
    """
    if not _RESIDENT_ID_SHAPE.fullmatch(number):
        return False
    return (
        _has_resident_id_check_character(number)
        and number[:2] in _PROVINCE_CODES
        and _has_plausible_birth_date(number[6:14], today)
    )


# a mainland mobile number, with the country code or not
_MAINLAND_MOBILE = re.compile(r"(?:0086|86)?(?P<number>1[3-9][0-9]{9})")
_FIRST_GENERATION_ID = re.compile(r"[0-9]{15}")
# what people type between groups of digits: ASCII, full-width (Chinese input methods) and
# typographic hyphens, dots, underscores and spaces
_SEPARATOR_CHARACTERS = "-._ \u00a0\u2000-\u200a\u202f\u2010-\u2015\u2212\u3000\uff0d\uff0e\uff3f"
_SEPARATORS = re.compile(f"[{_SEPARATOR_CHARACTERS}]")
_GROUP_JOINER = re.compile(f"[{_SEPARATOR_CHARACTERS}]{{1,3}}")
# a run of decimal digits of any script (full-width ones included), an identity number's
# last one perhaps an X
_DIGIT_GROUP = re.compile(r"(?<!\d)\d+(?:[XxＸｘ](?!\d))?")
_FULL_WIDTH_X = {"Ｘ": "X", "ｘ": "x"}
# How people type a number in groups, by the groups' lengths: a mobile 3-4-4 (after a country
# code of 2 or 4 digits, 86 or 0086, or not), an identity number 6-8-4 or 6-4-4-4 (area, birth
# year, month and day, serial and check character). Groups of other lengths are not joined: a
# browser's version (Chrome/131.0.6778.108), a registration number (13501-202612-000007) or a
# case id's hex groups joined into 11 digits starting 13 looked like mobiles (review passes).
_TYPED_SHAPES = ((2, 3, 4, 4), (4, 3, 4, 4), (6, 4, 4, 4), (3, 4, 4), (6, 8, 4))


def looks_like_a_personal_number(text: str) -> bool:
    """Whether `text`, given where a code is expected (an imported case's external id), is a
    resident identity number (of 18 characters, or a first-generation one of 15 digits) or a
    mainland mobile number, separators aside and however its digits are typed (full-width
    ones too): personal data that must not be stored or shown outside a sealed field (PIPL;
    DOMAIN.md "Personal data")."""
    digits = _plain_digits(text)
    return (
        is_valid_resident_id(digits)
        or _is_first_generation_id(digits)
        or _MAINLAND_MOBILE.fullmatch(digits) is not None
    )


REDACTED_NUMBER = "[personal number]"


def personal_numbers_redacted(text: str) -> str:
    """`text` with each identity or mobile number in it (`looks_like_a_personal_number`, a
    group of digits or several joined by separators, "138 0013 8000", "110105-19491231-002X",
    full-width digits alike) replaced: for what a client may put anywhere, a header, a path, a
    JSON key, and the service would otherwise keep or log in clear (found by review passes)."""
    groups = list(_DIGIT_GROUP.finditer(text))
    pieces, end = [], 0
    for start, stop in _personal_number_spans(text, groups):
        pieces += [text[end:start], REDACTED_NUMBER]
        end = stop
    return "".join([*pieces, text[end:]]) if pieces else text


def holds_a_personal_number(text: str) -> bool:
    return personal_numbers_redacted(text) != text


def _personal_number_spans(text: str, groups: list[re.Match[str]]) -> list[tuple[int, int]]:
    """Where in `text` its digit `groups` make personal numbers, each the longest found from
    its first group, left to right."""
    spans, first = [], 0
    while first < len(groups):
        last = _last_group_of_a_personal_number(text, groups, first)
        if last is None:
            first += 1
            continue
        spans.append((groups[first].start(), groups[last].end()))
        first = last + 1
    return spans


def _last_group_of_a_personal_number(
    text: str, groups: list[re.Match[str]], first: int
) -> int | None:
    """The last group of a personal number starting at group `first`: the groups of a shape
    people type numbers in (`_TYPED_SHAPES`), joined by separators and standing apart from
    letters, or the group alone; None when neither is one."""
    for shape in _TYPED_SHAPES:
        last = first + len(shape) - 1
        if last < len(groups) and _typed_in(text, groups[first : last + 1], shape):
            return last
    alone = groups[first].group()
    # a mobile number written straight before an x ("13800138000x"), which the group takes for
    # an identity number's check character
    if looks_like_a_personal_number(alone) or (
        alone[-1] in _FULL_WIDTH_X.keys() | _FULL_WIDTH_X.values()
        and looks_like_a_personal_number(alone[:-1])
    ):
        return first
    return None


def _typed_in(text: str, groups: list[re.Match[str]], shape: tuple[int, ...]) -> bool:
    """Whether `groups` have the lengths of `shape`, each joined to the next by separators, the
    last not run on into a word (a hex id's "334f"; a label before the first, "TEL", is no
    matter), and make a personal number together."""
    if [len(group.group()) for group in groups] != list(shape):
        return False
    if _beside_a_letter(text, groups[-1].end()):
        return False
    joined = all(
        _GROUP_JOINER.fullmatch(text, before.end(), after.start())
        for before, after in pairwise(groups)
    )
    return joined and looks_like_a_personal_number("".join(g.group() for g in groups))


def _beside_a_letter(text: str, index: int) -> bool:
    return 0 <= index < len(text) and text[index].isascii() and text[index].isalpha()


def _plain_digits(text: str) -> str:
    """`text` without separators, its decimal digits of any script as ASCII ones."""
    return "".join(
        str(unicodedata.decimal(character)) if character.isdecimal()
        else _FULL_WIDTH_X.get(character, character)
        for character in _SEPARATORS.sub("", text)
    )  # fmt: skip


def _is_first_generation_id(number: str) -> bool:
    """15 digits: an area code of a province, a birth date as YYMMDD in the 1900s, a serial."""
    return (
        _FIRST_GENERATION_ID.fullmatch(number) is not None
        and number[:2] in _PROVINCE_CODES
        and _has_plausible_birth_date(f"19{number[6:12]}", None)
    )


def is_valid_unified_social_credit_code(code: str) -> bool:
    """Whether `code` is a well-formed unified social credit code (统一社会信用代码).

    Checks, per GB 32100-2015: 18 characters from `USCC_CHARACTERS` (upper case; no I, O, S, V
    or Z) and the check character at position 18. The embedded organisation code is covered by
    that check and is not checked separately.
    """
    if len(code) != 18 or any(character not in _USCC_VALUES for character in code):
        return False
    weighted_sum = sum(
        _USCC_VALUES[character] * weight
        for character, weight in zip(code[:17], _USCC_WEIGHTS, strict=True)
    )
    return _USCC_VALUES[code[17]] == (31 - weighted_sum % 31) % 31


def mask_name(name: str) -> str:
    """Keep only the first character, usually the surname: "张三丰" -> "张**".

    A one-character name is masked entirely.
    """
    if len(name) < 2:
        return MASK_CHARACTER * len(name)
    return _mask_middle(name, keep_first=1, keep_last=0)


def mask_id_number(number: str) -> str:
    """Mask an identity document number.

    18 characters (a resident identity number): keep the 6-digit area code and the last 4, so
    the birth date is hidden: "11010519491231002X" -> "110105********002X". Any other length
    (passports, permits, old 15-digit numbers): keep only the last quarter, at most 4
    characters: "E12345678" -> "*******78".
    """
    if len(number) == 18:
        return _mask_middle(number, keep_first=6, keep_last=4)
    return _mask_all_but_tail(number)


def mask_phone(phone: str) -> str:
    """Mask a phone number.

    A mainland mobile number, however it was typed (separators, a +86 or 0086 prefix): its 11
    digits with the first 3 and the last 4 kept: "138-1234-5678" -> "138****5678". Anything
    else (a landline, an e-mail address): keep only the last quarter, at most 4 characters:
    "010-12345678" -> "*********678". Judged by what the number is, not by its length: the same
    mobile reads alike however the desk typed it, and an 11-character address is no mobile.
    """
    mobile = _MAINLAND_MOBILE.fullmatch(phone) or _MAINLAND_MOBILE.fullmatch(
        _SEPARATORS.sub("", phone).removeprefix("+")
    )
    if mobile is not None:
        return _mask_middle(mobile["number"], keep_first=3, keep_last=4)
    return _mask_all_but_tail(phone)


def _has_resident_id_check_character(number: str) -> bool:
    weighted_sum = sum(
        int(digit) * weight for digit, weight in zip(number[:17], _RESIDENT_ID_WEIGHTS, strict=True)
    )
    return number[17].upper() == _RESIDENT_ID_CHECK_CHARACTERS[weighted_sum % 11]


def _has_plausible_birth_date(yyyymmdd: str, today: date | None) -> bool:
    try:
        birth_date = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return False
    return today is None or birth_date <= today


def _mask_all_but_tail(text: str) -> str:
    return _mask_middle(text, keep_first=0, keep_last=min(4, len(text) // 4))


def _mask_middle(text: str, keep_first: int, keep_last: int) -> str:
    masked_length = len(text) - keep_first - keep_last
    return text[:keep_first] + MASK_CHARACTER * masked_length + text[len(text) - keep_last :]
