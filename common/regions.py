"""Region codes used to validate a billing address: countries and Indian GST states."""

from __future__ import annotations

from typing import Final

# ISO 3166-1 alpha-2, all 249 officially assigned codes.
ISO_COUNTRY_CODES: Final = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI
    BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN
    CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK
    FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
    HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK
    ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP
    NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
    TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """.split()
)

# Indian states and union territories as GST and ISO 3166-2:IN name them, mapped to one
# canonical code. Several were renamed (CG/CT, OD/OR, TG/TS, UK/UT) and both spellings are
# still in use, so both are accepted and compare equal.
_STATE_CANONICAL: Final = {
    "AN": "AN",
    "AP": "AP",
    "AR": "AR",
    "AS": "AS",
    "BR": "BR",
    "CH": "CH",
    "CT": "CT",
    "CG": "CT",
    "DL": "DL",
    "GA": "GA",
    "GJ": "GJ",
    "HR": "HR",
    "HP": "HP",
    "JK": "JK",
    "JH": "JH",
    "KA": "KA",
    "KL": "KL",
    "LA": "LA",
    "LD": "LD",
    "MP": "MP",
    "MH": "MH",
    "MN": "MN",
    "ML": "ML",
    "MZ": "MZ",
    "NL": "NL",
    "OR": "OR",
    "OD": "OR",
    "PY": "PY",
    "PB": "PB",
    "RJ": "RJ",
    "SK": "SK",
    "TN": "TN",
    "TS": "TS",
    "TG": "TS",
    "TR": "TR",
    "UP": "UP",
    "UT": "UT",
    "UK": "UT",
    "WB": "WB",
    # Dadra and Nagar Haveli and Daman and Diu merged into one UT in 2020 (ISO: DH), so a
    # supply between the old halves is now intra-state.
    "DN": "DH",
    "DD": "DH",
    "DH": "DH",
}

INDIAN_STATE_CODES: Final = frozenset(_STATE_CANONICAL)


def is_country_code(code: str) -> bool:
    """True for an ISO 3166-1 alpha-2 code, any letter case ("IN", "us")."""
    return _ascii_upper(code) in ISO_COUNTRY_CODES


def is_indian_state_code(code: str) -> bool:
    """True for a GST state/UT code, including the renamed alternates."""
    return _ascii_upper(code) in INDIAN_STATE_CODES


def canonical_state(code: str) -> str:
    """One spelling per state, so "CG" and "CT" compare equal. Raises ValueError if unknown."""
    try:
        return _STATE_CANONICAL[_ascii_upper(code)]
    except KeyError:
        raise ValueError(f"unknown Indian state code {code[:10]!r}") from None


def _ascii_upper(code: str) -> str:
    # Non-ASCII input could upper-case into a valid code ("ß".upper() == "SS").
    return code.upper() if code.isascii() else ""
