"""Bokmål names of publication languages, as nva-nvi's institution report shows them (column SPRÅK).

nva-nvi looks the publication's Lexvo URI up in NVA's language list (the `nva-language` library)
and shows its Bokmål name. A URI that is not in the list is "Ukjent språk"; Norwegian (`nor`) is
shown as Bokmål and "miscellaneous" (`mis`) as several languages, as that library maps them. The
codes are the library's, Catalan's `car` included.
"""

from __future__ import annotations

LEXVO_ISO_639_3 = "http://lexvo.org/id/iso639-3/"
LEXVO_ISO_639_5 = "http://lexvo.org/id/iso639-5/"
UNKNOWN_LANGUAGE = "Ukjent språk"

_ISO_639_3_BOKMAAL = {
    "und": UNKNOWN_LANGUAGE,
    "eng": "Engelsk",
    "nob": "Bokmål",
    "nno": "Nynorsk",
    "nor": "Bokmål",
    "mis": "Flere språk",
    "mul": "Flere språk",
    "dan": "Dansk",
    "swe": "Svensk",
    "spa": "Spansk",
    "deu": "Tysk",
    "sme": "Nordsamisk",
    "sma": "Sørsamisk",
    "smj": "Lulesamisk",
    "sje": "Pitesamisk",
    "sms": "Skoltesamisk",
    "smn": "Enaresamisk",
    "sjd": "Kildinsamisk",
    "fkv": "Kvensk",
    "fra": "Fransk",
    "nld": "Nederlandsk",
    "fin": "Finsk",
    "isl": "Islandsk",
    "ita": "Italiensk",
    "por": "Portugisisk",
    "rus": "Russisk",
    "afr": "Afrikaans",
    "bul": "Bulgarsk",
    "ell": "Gresk",
    "car": "Katalansk",
    "zho": "Kinesisk",
    "pol": "Polsk",
    "ces": "Tsjekkisk",
    "hun": "Ungarsk",
    "ukr": "Ukrainsk",
    "fao": "Færøysk",
}
_ISO_639_5_BOKMAAL = {"smi": "Samisk språk"}

LANGUAGE_LABELS = {
    **{LEXVO_ISO_639_3 + code: label for code, label in _ISO_639_3_BOKMAAL.items()},
    **{LEXVO_ISO_639_5 + code: label for code, label in _ISO_639_5_BOKMAAL.items()},
}


def language_label(language_uri: str | None) -> str:
    """The Bokmål name of a Lexvo language URI; empty when the publication names no language."""
    if not language_uri:
        return ""
    return LANGUAGE_LABELS.get(language_uri, UNKNOWN_LANGUAGE)
