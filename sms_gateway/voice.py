"""Pure: the phone line's French voice menu — keypad codes of stops and TwiML answers.

A caller without a smartphone keys the stop's code printed on its plate with the letters of the
phone keypad (2 = ABC … 9 = WXYZ, as on every phone): CAL is 2 2 5. No number is added to the
plate or to lines.yaml, and the code a rider texts is the code they key. Two codes may share
keys (GSC and GRC are both 4 7 2): the caller then picks the stop by its name from a short menu.
Destinations are read out as a numbered menu (1 = the next stop of the direction, and so on).
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from dispatcher.model import Line, Network, Stop

XML_HEADER = '<?xml version="1.0" encoding="UTF-8"?>'
LANGUAGE = "fr-FR"
GATHER_TIMEOUT_SECONDS = 8

_KEYS = {
    **{letter: digit for digit, letters in {
        "2": "ABC", "3": "DEF", "4": "GHI", "5": "JKL",
        "6": "MNO", "7": "PQRS", "8": "TUV", "9": "WXYZ",
    }.items() for letter in letters},
}  # fmt: skip

WELCOME = (
    "Bonjour, ici le covoiturage. Tapez le code de l'arrêt écrit sur son panneau, "
    "avec les lettres du clavier, puis la touche dièse. Par exemple, pour C, A, L, tapez 2, 2, 5."
)
STOP_AGAIN = (
    "Ce code d'arrêt n'est pas reconnu. Tapez à nouveau les trois lettres du code, "
    "avec les lettres du clavier, puis dièse."
)
CHOICE_AGAIN = "Ce choix n'est pas reconnu."
GOODBYE_UNDERSTOOD = (
    "Désolé, nous n'avons pas compris. Vous pouvez aussi envoyer un SMS avec le code de l'arrêt "
    "et la destination. Au revoir."
)
HIDDEN_NUMBER = (
    "Votre numéro est masqué. Pour demander un covoiturage, appelez sans masquer votre numéro, "
    "ou appuyez sur la borne de l'arrêt. Au revoir."
)
RATE_LIMITED = "Trop d'appels de ce numéro. Merci de rappeler dans quelques minutes. Au revoir."
UNAVAILABLE = "Service momentanément indisponible. Merci de rappeler dans une minute. Au revoir."
SMS_FOLLOWS = "Vous recevrez les nouvelles de votre demande par SMS."


def keypad_digits(code: str) -> str:
    """The keys of a stop code on a phone keypad ("CAL" -> "225"); digits stay themselves."""
    return "".join(_KEYS.get(char, char if char.isdigit() else "") for char in code.upper())


def stops_keyed(network: Network, digits: str) -> list[tuple[Line, Stop]]:
    """The stops whose code is keyed `digits` (none, one, or a few sharing keys)."""
    wanted = "".join(char for char in digits if char.isdigit())
    if not wanted:
        return []
    return [
        (line, stop)
        for line in network.lines
        for stop in line.all_stops()
        if keypad_digits(stop.code) == wanted
    ]


def choice(digits: str, count: int) -> int | None:
    """The menu entry (0-based) keyed `digits` among `count`, or None."""
    keyed = digits.strip().rstrip("#")
    if not keyed.isascii() or not keyed.isdecimal():
        return None
    index = int(keyed) - 1
    return index if 0 <= index < count else None


def spelled(code: str) -> str:
    """A code read character by character ("4821" -> "4, 8, 2, 1")."""
    return ", ".join(code)


def menu(names: Sequence[str]) -> str:
    """ "Pour Marck, tapez 1. Pour Dunkerque, tapez 2." for the names in order."""
    return " ".join(f"Pour {name}, tapez {index}." for index, name in enumerate(names, 1))


def stop_menu(stops: Sequence[Stop]) -> str:
    """The prompt when several stops share the keyed code."""
    return "Plusieurs arrêts ont ce code. " + menu([stop.name for stop in stops])


def destination_menu(stop: Stop, destinations: Sequence[Stop]) -> str:
    """The prompt for the destination from `stop`."""
    return f"Arrêt {stop.name}. Choisissez votre destination. " + menu(
        [destination.name for destination in destinations]
    )


def expected_wait(minutes: int) -> str:
    """The wait to expect, as the phone line says it ("… est de 4 minutes.", "1 minute")."""
    unit = "minute" if minutes == 1 else "minutes"
    return f"L'attente estimée est de {minutes} {unit}."


def driver_announced(minutes: int) -> str:
    """A driver announced ("Je passe") to pass the stop within the expected wait."""
    unit = "minute" if minutes == 1 else "minutes"
    return f"Un conducteur est annoncé dans environ {minutes} {unit}."


def code_read_back(
    destination: str, code: str, wait_minutes: int | None = None, driver_minutes: int | None = None
) -> str:
    """The words for a request that waits: where to, the wait to expect when there is an
    estimate (and an announced driver coming within it), the code twice, digit by digit."""
    said = [
        *([expected_wait(wait_minutes)] if wait_minutes is not None else []),
        *([driver_announced(driver_minutes)] if driver_minutes is not None else []),
    ]
    wait = "".join(part + " " for part in said)
    return (
        f"Votre demande vers {destination} est enregistrée, les panneaux sont allumés. {wait}"
        f"Votre code est : {spelled(code)}. Je répète : {spelled(code)}. "
        f"Donnez ce code au conducteur qui s'arrête. {SMS_FOLLOWS} Au revoir."
    )


def already_waiting(destination: str, code: str) -> str:
    """The caller's number already waits for a ride."""
    return (
        f"Vous avez déjà une demande en cours vers {destination}. "
        f"Votre code est : {spelled(code)}. Je répète : {spelled(code)}. Au revoir."
    )


def gather(prompt: str, action: str, keys: int | None = None) -> str:
    """Say `prompt` while gathering keys, posted to `action`; silence posts `action` without
    Digits (the channel then asks again or says goodbye). `keys` ends the input at that count,
    else the caller ends it with #."""
    length = f" numDigits={quoteattr(str(keys))}" if keys is not None else ""
    return (
        f"{XML_HEADER}<Response>"
        f'<Gather input="dtmf" action={quoteattr(action)} method="POST" finishOnKey="#"'
        f' timeout="{GATHER_TIMEOUT_SECONDS}"{length}>'
        f"{_say(prompt)}</Gather>"
        f'<Redirect method="POST">{escape(action)}</Redirect>'
        "</Response>"
    )


def goodbye(*sentences: str) -> str:
    """Say the sentences, then hang up."""
    return f"{XML_HEADER}<Response>{''.join(_say(s) for s in sentences)}<Hangup/></Response>"


def keys_for(count: int) -> int:
    """How many keys a menu of `count` entries needs (1 up to 9 entries)."""
    return len(str(count))


def _say(text: str) -> str:
    return f'<Say language="{LANGUAGE}">{escape(text)}</Say>'
