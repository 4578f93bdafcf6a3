"""Pure: the French SMS grammar — a message body becomes one frozen command, never an exception.

Grammar (case-, accent- and spacing-insensitive):
    <STOP CODE> <DESTINATION>   ask for a ride ("cal dunkerque", "CAL Dunkerke", "cal dkq")
    <STOP CODE> <DESTINATION> <MINUTES>, EN ROUTE <STOP CODE> <DESTINATION> [<MINUTES>],
    J'ARRIVE <STOP CODE> <DESTINATION> [<MINUTES>]
                                "I am coming" (within 30 min; 15 when no minutes are given):
                                signs tell drivers a rider comes ("cal dunkerque 10")
    ICI                         the sender, who said they were coming, is at the stop
    ANNULER                     cancel the sender's waiting request
    PARTI                       the sender left (with a driver or otherwise)
    AIDE                        how to use the service (also an empty or unreadable message)
    STOP, STOP SMS, ARRET       no more texts to this number until it writes again
    <4 digits>                  a driver validates a passenger's code ("4821", "code 4821")
    NOM <last name>             for the national registry's identity (given once, optional)
    MAJEUR OUI | MAJEUR NON     adult or not, for the registry's campaigns (optional)
    TRAJET <4 digits>           a terminal rider links their trip to this number, afterwards
    CGU, CONDITIONS             the terms: trips are declared to the national registry

Destinations are matched only among the stops downstream of the asking stop, by name or code,
with prefixes ("dunk") and small typos (rapidfuzz) accepted when one destination clearly wins.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rapidfuzz import fuzz

from dispatcher.model import LineId, Network, Stop, StopId

MAX_BODY = 1000
MAX_WRITTEN = 40
FUZZY_CUTOFF = 75.0
FUZZY_MARGIN = 8.0
MIN_PREFIX = 3

CANCEL_WORDS = frozenset({"ANNULER", "ANNULE", "ANNULEE", "ANNULEZ", "ANNULATION", "ANNUL"})
DEPARTED_WORDS = frozenset({"PARTI", "PARTIE", "PARTIS", "PARTIES", "DEPART", "DEPARTI"})
HELP_WORDS = frozenset({"AIDE", "HELP", "INFO", "INFOS", "AIDEZ", "COMMENT"})
OPT_OUT_WORDS = frozenset({"STOP", "ARRET", "ARRETER", "STOPSMS", "DESABONNER", "DESINSCRIRE"})
"""French opt-out words: alone, or followed by SMS ("STOP SMS"); never read as a stop code."""
CODE_WORDS = frozenset({"CODE", "VALIDE", "VALIDER", "VALIDATION"})
NAME_WORDS = frozenset({"NOM"})
ADULT_WORDS = frozenset({"MAJEUR", "MAJEURE", "MAJEURS"})
YES_WORDS, NO_WORDS = frozenset({"OUI", "O", "YES"}), frozenset({"NON", "N", "NO"})
LINK_WORDS = frozenset({"TRAJET"})
TERMS_WORDS = frozenset({"CGU", "CONDITIONS", "CONDITION"})
MAX_NAME = 64
_NOT_ALNUM = re.compile(r"[^A-Z0-9]+")
_STOP_CODE_SHAPE = re.compile(r"^[A-Z]{2,5}$")


@dataclass(frozen=True, slots=True)
class AskRide:
    """A ride from a stop to a destination downstream of it."""

    line_id: LineId
    stop_id: StopId
    destination_id: StopId
    coming_in_minutes: int | None = None
    """Set when the rider is not at the stop yet ("J'arrive"): minutes until they are."""


@dataclass(frozen=True, slots=True)
class Here:
    """ICI: the sender, who announced their coming, is at the stop now."""


@dataclass(frozen=True, slots=True)
class NeedDestination:
    """A known stop, but the destination is missing, unknown or ambiguous."""

    line_id: LineId
    stop_id: StopId
    written: str


@dataclass(frozen=True, slots=True)
class NoRideFrom:
    """A known stop where no ride starts (end of its direction)."""

    line_id: LineId
    stop_id: StopId


@dataclass(frozen=True, slots=True)
class UnknownStop:
    """The first word looks like a stop code, but no stop has it."""

    written: str


@dataclass(frozen=True, slots=True)
class Cancel:
    """ANNULER: cancel the sender's waiting request."""


@dataclass(frozen=True, slots=True)
class Departed:
    """PARTI: the sender left; the signs can go dark."""


@dataclass(frozen=True, slots=True)
class Help:
    """AIDE, or a message we could not read: explain how to use the service."""

    understood: bool = True


@dataclass(frozen=True, slots=True)
class OptOut:
    """STOP, STOP SMS, ARRET: send this number nothing more until it writes again."""


@dataclass(frozen=True, slots=True)
class DriverCode:
    """A driver sends the passenger's 4-digit code."""

    code: str


@dataclass(frozen=True, slots=True)
class GiveName:
    """NOM <last name>: the registry's form of it (upper case, no accent or dash); empty when
    the sender wrote NOM alone or something that is no name."""

    last_name: str


@dataclass(frozen=True, slots=True)
class GiveAdult:
    """MAJEUR OUI / MAJEUR NON (None when neither was written)."""

    adult: bool | None


@dataclass(frozen=True, slots=True)
class LinkTrip:
    """TRAJET <code>: the terminal rider of that trip gives their number afterwards."""

    code: str


@dataclass(frozen=True, slots=True)
class Terms:
    """CGU, CONDITIONS: what is done with trips (declared to the national registry)."""


Command = (
    AskRide
    | NeedDestination
    | NoRideFrom
    | UnknownStop
    | Cancel
    | Departed
    | Help
    | DriverCode
    | OptOut
    | GiveName
    | GiveAdult
    | LinkTrip
    | Terms
    | Here
)

DEFAULT_COMING_MINUTES = 15
MAX_COMING_MINUTES = 30
COMING_PREFIXES = (("EN", "ROUTE"), ("J", "ARRIVE"), ("JARRIVE",))
HERE_WORDS = frozenset({"ICI", "ARRIVE", "ARRIVEE", "LA"})
MINUTE_WORDS = frozenset({"MIN", "MINS", "MINUTE", "MINUTES", "MN", "M"})


def normalize(body: str) -> str:
    """Upper case, accents and punctuation dropped, words separated by single spaces."""
    decomposed = unicodedata.normalize("NFKD", body[:MAX_BODY])
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _NOT_ALNUM.sub(" ", bare.upper()).strip()


def parse(body: str, network: Network) -> Command:
    """The command an SMS body carries; unreadable input gives `Help(understood=False)`."""
    words = normalize(body).split()
    if not words:
        return Help(understood=False)
    first = words[0]
    if first in OPT_OUT_WORDS and words[1:] in ([], ["SMS"]):
        return OptOut()
    attestation = _attestation(words)
    if attestation is not None:
        return attestation
    if len(words) == 1 and first in HERE_WORDS:
        return Here()
    coming: int | None = None
    for prefix in COMING_PREFIXES:
        if tuple(words[: len(prefix)]) == prefix and len(words) > len(prefix):
            words, coming = words[len(prefix) :], DEFAULT_COMING_MINUTES
            first = words[0]
            break
    found = network.stop_by_code(first) if _STOP_CODE_SHAPE.match(first) else None
    if found is not None and len(words) > 1:
        line, stop = found
        rest, minutes = _minutes_at_end(words[1:])
        ride = _ride(line.id, stop, line.destinations_from(stop.id), rest)
        coming = minutes if minutes is not None else coming
        if isinstance(ride, AskRide) and coming is not None:
            return AskRide(ride.line_id, ride.stop_id, ride.destination_id, coming)
        return ride
    keyword = _keyword(words)
    if keyword is not None:
        return keyword
    if found is not None:
        line, stop = found
        return _ride(line.id, stop, line.destinations_from(stop.id), [])
    if _STOP_CODE_SHAPE.match(first):
        return UnknownStop(first)
    return Help(understood=False)


def _attestation(words: list[str]) -> Command | None:
    """NOM, MAJEUR, TRAJET, CGU: what attestation to the national registry needs."""
    first, rest = words[0], words[1:]
    if first in NAME_WORDS:
        name = " ".join(rest)
        valid = bool(name) and len(name) <= MAX_NAME and all(word.isalpha() for word in rest)
        return GiveName(name if valid else "")
    if first in ADULT_WORDS:
        answer = rest[0] if len(rest) == 1 else ""
        return GiveAdult(True if answer in YES_WORDS else False if answer in NO_WORDS else None)
    if first in LINK_WORDS:
        code = rest[0] if len(rest) == 1 and rest[0].isdigit() and len(rest[0]) == 4 else ""
        return LinkTrip(code)
    if first in TERMS_WORDS and not rest:
        return Terms()
    return None


def _minutes_at_end(words: list[str]) -> tuple[list[str], int | None]:
    """The words before a trailing "10" or "10 min", and those minutes (1-30; None if absent)."""
    rest = words[:-1] if len(words) > 2 and words[-1] in MINUTE_WORDS else words
    if len(rest) < 2:
        return words, None
    last = rest[-1]
    for word in MINUTE_WORDS:  # "10MIN" written as one word
        if last.endswith(word) and last[: -len(word)].isdigit():
            last = last[: -len(word)]
            break
    if not (last.isascii() and last.isdecimal() and len(last) <= 3):
        return words, None
    return rest[:-1], min(max(int(last), 1), MAX_COMING_MINUTES)


def _keyword(words: list[str]) -> Command | None:
    first = words[0]
    if len(words) == 1 and first.isdigit() and len(first) == 4:
        return DriverCode(first)
    if len(words) == 2 and first in CODE_WORDS and words[1].isdigit() and len(words[1]) == 4:
        return DriverCode(words[1])
    if first in CANCEL_WORDS or (len(words) <= 3 and fuzz.ratio(first, "ANNULER") >= 80):
        return Cancel()
    if any(word in DEPARTED_WORDS for word in words[:3]):
        return Departed()
    if first in HELP_WORDS:
        return Help()
    return None


def _ride(line_id: LineId, stop: Stop, downstream: tuple[Stop, ...], rest: list[str]) -> Command:
    if not downstream:
        return NoRideFrom(line_id, stop.id)
    written = " ".join(rest)[:MAX_WRITTEN]
    destination = match_destination(rest, downstream)
    if destination is None:
        return NeedDestination(line_id, stop.id, written)
    return AskRide(line_id, stop.id, destination.id)


def match_destination(words: list[str], downstream: tuple[Stop, ...]) -> Stop | None:
    """The one destination these words name (exact, prefix, then fuzzy), or None."""
    if not words:
        return None
    # The destination may be followed by extra words ("dunkerque svp"): try the leading words.
    attempts = [words[:n] for n in range(len(words), 0, -1)][:3]
    for attempt in attempts:
        compact = "".join(attempt)[:MAX_WRITTEN]
        exact = [s for s in downstream if compact in (_compact(s.name), s.code.upper())]
        if len(exact) == 1:
            return exact[0]
    for attempt in attempts:
        compact = "".join(attempt)[:MAX_WRITTEN]
        if len(compact) >= MIN_PREFIX:
            prefixed = [s for s in downstream if _compact(s.name).startswith(compact)]
            if len(prefixed) == 1:
                return prefixed[0]
    best: tuple[float, Stop] | None = None
    for attempt in attempts:
        compact = "".join(attempt)[:MAX_WRITTEN]
        scored = sorted(
            ((fuzz.ratio(compact, _compact(s.name)), s) for s in downstream),
            key=lambda pair: pair[0],
            reverse=True,
        )
        top_score, top = scored[0]
        runner_up = scored[1][0] if len(scored) > 1 else 0.0
        clear = top_score >= FUZZY_CUTOFF and top_score - runner_up >= FUZZY_MARGIN
        if clear and (best is None or top_score > best[0]):
            best = (top_score, top)
    return best[1] if best else None


def _compact(name: str) -> str:
    return normalize(name).replace(" ", "")
