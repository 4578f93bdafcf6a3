"""Pure: the French texts sent to riders and drivers, each meant to fit one GSM-7 SMS segment.

Only GSM 03.38 characters are used (é è à ù are in it; ê ç â î ô are not and would switch the
message to UCS-2 and 70-character segments): "arret", "etes", "deja" are written on purpose.
Names coming from lines.yaml are folded to GSM-7 too (`to_gsm7`).
"""

from __future__ import annotations

from dispatcher.model import Line, LineId, Network, ServiceHours, Stop, StopId, Weekday
from dispatcher.request_machine import Cause, RequestState, RideRequest
from sms_gateway.gsm7 import GSM7_SINGLE, segments, to_gsm7

__all__ = ["segments"]

EXAMPLE = "Ex: CAL DUNKERQUE"
DAY_NAMES = {
    Weekday.MON: "lun",
    Weekday.TUE: "mar",
    Weekday.WED: "mer",
    Weekday.THU: "jeu",
    Weekday.FRI: "ven",
    Weekday.SAT: "sam",
    Weekday.SUN: "dim",
}

HELP = (
    "Covoiturage: envoyez le code de l'arret (panneau) et la destination, "
    "ex: CAL DUNKERQUE. ANNULER pour annuler, PARTI si parti, STOP: plus de SMS. CGU: conditions"
)
TERMS = (
    "Trajets declares au registre national du covoiturage (numero tronque, empreinte). "
    "Facultatif, pour les aides: NOM DUPONT, MAJEUR OUI. Trajet borne: TRAJET 4821"
)
NAME_KEPT = (
    "Nom enregistre pour declarer vos trajets au registre national du covoiturage. "
    "Rien d'autre n'est garde."
)
ADULT_KEPT = "Reponse enregistree pour declarer vos trajets au registre national du covoiturage."
ATTESTATION_HOW = "Ecrivez NOM puis votre nom de famille, ex: NOM DUPONT. MAJEUR OUI ou MAJEUR NON."
TRIP_LINKED = "Trajet lie a votre numero: il sera declare au registre national du covoiturage."
TRIP_LINK_HOW = "Ecrivez TRAJET puis le code a 4 chiffres de votre trajet, ex: TRAJET 4821."


def no_trip_to_link(hours: int) -> str:
    """TRAJET <code>: no terminal trip with that code in the last `hours` hours."""
    return (
        f"Aucun trajet borne avec ce code dans les {hours} dernieres heures. "
        "Verifiez le code du ticket."
    )


OPTED_OUT = (
    "Vous ne recevrez plus de SMS du covoiturage. Ecrivez-nous a nouveau pour reprendre le service."
)
NOT_UNDERSTOOD = (
    "Message non compris. Envoyez le code de l'arret (sur son panneau) et la destination, "
    "ex: CAL DUNKERQUE. AIDE pour l'aide."
)
CANCELLED = "Demande annulée, panneaux éteints. Bonne journée."
DEPARTED = "Merci, bon voyage! Votre demande est close."
NOTHING_WAITING = "Aucune demande en cours pour ce numéro. " + EXAMPLE
CODE_VALIDATED = "Merci! Trajet validé, bon covoiturage."
CODE_AMBIGUOUS = (
    "Ce code est attendu sur plusieurs lignes: validez le trajet dans l'application "
    "ou appelez l'exploitant."
)
OWN_CODE = "C'est votre code: donnez-le au conducteur qui vous prend."
RATE_LIMITED = "Trop de messages de ce numéro. Merci de réessayer dans quelques minutes."
BAD_NUMBER = "Numéro d'expéditeur non reconnu: le service SMS ne peut pas vous répondre."
UNAVAILABLE = "Service momentanément indisponible. Merci de réessayer dans une minute."
STOP_FULL = "Trop de passagers attendent à cet arret. Réessayez dans quelques minutes."
REMOTE_FULL = (
    "Trop de demandes à distance pour cet arret. Si vous y etes, appuyez sur la borne de "
    "l'arret; sinon réessayez dans quelques minutes."
)
NO_FREE_CODE = "Service saturé. Réessayez dans une minute."
COMMISSIONING = "Arret en cours de mise en service, pas encore ouvert. Aucun panneau allumé."


def wait_words(seconds: float) -> str:
    """A wait in short French: whole minutes (rounded up) below two hours, else hours."""
    minutes = max(1, -(-int(seconds) // 60))
    return f"{minutes} min" if minutes < 120 else f"{-(-minutes // 60)} h"


def codes_locked(retry_after_seconds: float) -> str:
    """Too many wrong drivers' codes (this number's, or the line's): no code checked for now."""
    return (
        f"Trop de codes erronés, réessayez dans {wait_words(retry_after_seconds)}. "
        "Le passager peut envoyer PARTI en montant."
    )


def requests_limited(retry_after_seconds: float) -> str:
    """Too many ride requests from this number."""
    return f"Trop de demandes de ce numéro, réessayez dans {wait_words(retry_after_seconds)}."


def unknown_stop(written: str) -> str:
    """The first word is no stop code: say where the code is written."""
    code = to_gsm7(written[:6])
    return (
        f"Arret {code} inconnu. Le code de l'arret (3 lettres) est écrit sur le panneau "
        f"de l'arret, sous son nom. {EXAMPLE}"
    )


def code_unknown(code: str) -> str:
    """A driver's code matches no waiting passenger."""
    return f"Code {to_gsm7(code[:6])} inconnu ou déjà utilisé. Vérifiez le code du passager."


def code_unknown_or_suspended(code: str) -> str:
    """A driver's code held on no line still checking codes (others are past their budget):
    the same answer whether it is held on one of those or nowhere."""
    return (
        f"Code {to_gsm7(code[:6])} inconnu, ou validation suspendue sur sa ligne (trop de "
        "codes erronés). Le passager peut envoyer PARTI en montant."
    )


def no_ride_from(network: Network, line_id: LineId, stop_id: StopId) -> str:
    """The stop is the end of its direction."""
    stop = _stop(network, line_id, stop_id)
    return f"Aucun départ depuis {_name(stop)}: c'est un terminus. Utilisez l'arret d'en face."


def need_destination(network: Network, line_id: LineId, stop_id: StopId) -> str:
    """The destination is missing or unclear: list the valid ones from this stop."""
    line = network.line(line_id)
    stop = line.stop(stop_id) if line else None
    downstream = line.destinations_from(stop_id) if line else ()
    head = f"Destination non reconnue. Depuis {_name(stop)}: "
    code = stop.code.upper() if stop else "CAL"
    tail = f". Ex: {code} {to_gsm7(downstream[-1].name).upper() if downstream else ''}".rstrip()
    names: list[str] = []
    for destination in downstream:
        candidate = ", ".join([*names, _name(destination)])
        if len(head) + len(candidate) + len(", etc") + len(tail) > GSM7_SINGLE:
            names.append("etc")
            break
        names.append(_name(destination))
    return head + ", ".join(names) + tail


def ride_outcome(
    network: Network,
    request: RideRequest,
    wait_minutes: int | None = None,
    driver_minutes: int | None = None,
) -> str:
    """The answer to a ride request: its code and what to do, or why it was refused.

    `wait_minutes`: the expected wait (the line's recent waits, else the study's model);
    `driver_minutes`: a driver announced ("Je passe") to pass within it, said instead.
    """
    line = network.line(request.line_id)
    stop = line.stop(request.stop_id) if line else None
    destination = line.stop(request.destination_id) if line else None
    trip = f"{_name(stop)} -> {_name(destination)}"
    if request.state is RequestState.WAITING:
        return (
            f"Demande enregistrée {trip}. Donnez le code {request.code} au conducteur. "
            # One segment with the longest names: the estimate takes the signs' place.
            + _expected(wait_minutes, driver_minutes)
            + "ANNULER pour annuler, PARTI si vous partez."
        )
    if request.state is RequestState.REFUSED:
        return _refusal(line, request)
    return notification(network, request) or f"Votre demande {trip} est close."


def _expected(wait_minutes: int | None, driver_minutes: int | None) -> str:
    if driver_minutes is not None:
        return f"Conducteur annoncé dans {driver_minutes} min. "
    if wait_minutes is not None:
        return f"Attente estimée: {wait_minutes} min. "
    return "Panneaux allumés. "


def announced(network: Network, request: RideRequest, minutes: int) -> str:
    """The answer to "J'arrive": noted, the signs say when, the code, and ICI once there."""
    line = network.line(request.line_id)
    stop = line.stop(request.stop_id) if line else None
    destination = line.stop(request.destination_id) if line else None
    return (
        f"Noté: {_name(stop)} -> {_name(destination)} dans {minutes} min, panneaux allumés. "
        f"Code {request.code} pour le conducteur. ICI une fois à l'arret, ANNULER pour annuler."
    )


HERE_NOTHING = "Aucune arrivée annoncée pour ce numéro. Ex: EN ROUTE CAL DUNKERQUE 10"


def arrived(network: Network, request: RideRequest) -> str:
    """The answer to ICI: the rider waits at the stop now."""
    line = network.line(request.line_id)
    destination = line.stop(request.destination_id) if line else None
    return (
        f"Vous etes à l'arret: panneaux allumés vers {_name(destination)}. "
        f"Donnez le code {request.code} au conducteur. PARTI si vous partez."
    )


def already_waiting(network: Network, waiting: RideRequest) -> str:
    """The sender already waits (one waiting request per phone)."""
    line = network.line(waiting.line_id)
    destination = line.stop(waiting.destination_id) if line else None
    return (
        f"Vous avez déjà une demande en cours vers {_name(destination)} "
        f"(code {waiting.code}). Envoyez ANNULER pour l'annuler avant d'en faire une autre."
    )


def notification(network: Network, request: RideRequest) -> str | None:
    """What to text a rider about a later change of their request, or None (nothing to say)."""
    line = network.line(request.line_id)
    stop = line.stop(request.stop_id) if line else None
    destination = line.stop(request.destination_id) if line else None
    match request.state, request.cause:
        case RequestState.PICKED_UP, Cause.CODE_VALIDATED:
            return f"Bon voyage! Le conducteur a validé votre code {request.code}. Merci."
        case RequestState.FALLBACK, _:
            return (
                f"Pas de conducteur pour l'instant: un taxi arrive à l'arret {_name(stop)}. "
                f"Gardez votre code {request.code}."
            )
        case RequestState.EXPIRED, Cause.ANNOUNCEMENT_LAPSED:
            return (
                f"Pas d'arrivée à l'arret {_name(stop)} à l'heure dite: annonce close, "
                "panneaux éteints. Renvoyez un SMS pour réessayer."
            )
        case RequestState.EXPIRED, _:
            return (
                f"Désolé, pas de conducteur à temps vers {_name(destination)}. Demande close, "
                "panneaux éteints. Renvoyez un SMS pour réessayer."
            )
        case RequestState.CANCELLED, Cause.OPERATOR_CANCELLED:
            return (
                f"Votre demande {_name(stop)} -> {_name(destination)} a été annulée par "
                "l'exploitant de la ligne."
            )
    return None


def service_hours(hours: ServiceHours) -> str:
    """Opening hours in short French ("lun-ven 06:30-09:30 16:00-19:30")."""
    groups: list[tuple[list[Weekday], str]] = []
    for day in Weekday:
        windows = hours.windows.get(day, ())
        text = " ".join(f"{w.start:%H:%M}-{w.end:%H:%M}" for w in windows)
        if groups and groups[-1][1] == text:
            groups[-1][0].append(day)
        else:
            groups.append(([day], text))
    parts = []
    for days, text in groups:
        if not text:
            continue
        label = DAY_NAMES[days[0]]
        if len(days) > 1:
            label += f"-{DAY_NAMES[days[-1]]}"
        parts.append(f"{label} {text}")
    return ", ".join(parts) or "aucun horaire"


def _refusal(line: Line | None, request: RideRequest) -> str:
    match request.cause:
        case Cause.CLOSED:
            hours = line.service_hours if line else None
            opening = f" Horaires: {service_hours(hours)}." if hours else ""
            return f"Ligne fermée en ce moment, aucun panneau allumé.{opening}"
        case Cause.COMMISSIONING:
            return COMMISSIONING
        case Cause.UNKNOWN_DESTINATION:
            return "Cette destination n'est pas desservie depuis cet arret. " + EXAMPLE
        case Cause.STOP_FULL:
            return STOP_FULL
        case Cause.REMOTE_FULL:
            return REMOTE_FULL
        case Cause.NO_FREE_CODE:
            return NO_FREE_CODE
        case Cause.ALREADY_WAITING:
            return "Vous avez déjà une demande en cours. ANNULER pour l'annuler."
    return "Demande refusée. " + EXAMPLE


def _stop(network: Network, line_id: LineId, stop_id: StopId) -> Stop | None:
    line = network.line(line_id)
    return line.stop(stop_id) if line else None


def _name(stop: Stop | None) -> str:
    return to_gsm7(stop.name) if stop else "?"
