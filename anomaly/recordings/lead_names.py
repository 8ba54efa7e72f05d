"""Which lead of a recording is read when none is asked for: ECG leads told from the
other signals a recording may hold (a sleep study's EEG, a bedside monitor's pressures
and rates) by their names and units, and lead II preferred, however spelt.

Names are compared as words of ASCII letters and digits in their compatibility forms
(``ECG \u2161`` is ``ECG II``), and as one word (``EKG-II`` is ``EKGII``).
"""

from __future__ import annotations

import re
import unicodedata

from ..exceptions import InputError

#: The leads chosen when none is asked for, the first the recording has: those rhythm
#: is read on (modified lead II, lead II), however a recording spells them (``II``,
#: ``ECG II``, ``EKG-II``, ``Lead II``, ``ML2``); else :func:`default_lead`'s choice.
PREFERRED_LEADS = ("MLII", "II")
#: A lead whose name says it is an ECG lead: the limb, augmented and chest leads (and
#: the European ``DI``-``DIII``), modified and Holter leads (``MLII``, ``MV5``, ``CM5``,
#: ``MCL1``, ``CH1``), electrode pairs (``LA-RA``), Frank's leads, and any name holding
#: ECG or EKG (compared as :func:`_lead_key` spells them) ...
ECG_NAME = re.compile(r"ECG|EKG|^LEAD|^(ML)?(I|II|III|V)$|^A?V[RLF]$|^V[1-9]R?$|^V[XYZ]$|"
                      r"^D(I{1,3}|[1-3])$|^(MCL|CM|CC|CS|CH|MV)[0-9]$|^MCL$|^ML[A-Z0-9]+$|"
                      r"^(LA|RA|LL)(LA|RA|LL)$")
#: ... or one of whose words is an ECG lead's name (``Chest lead V1``, ``Local ECG``).
ECG_WORD = re.compile(r"^(ECG|EKG)[0-9]*$|^(ML)?(I|II|III)$|^A?V[RLF]$|^V[1-9]R?$|"
                      r"^D(I{1,3}|[1-3])$|^(MCL|CM|CC|CS|CH|MV)[0-9]$")
#: Such a word that outweighs :data:`NOT_ECG_NAME` (``Chest lead V1``): a limb lead's
#: numeral alone does not (``EMG II``).
ECG_WORD_OVER_OTHERS = re.compile(r"^(ECG|EKG)[0-9]*$|^A?V[RLF]$|^V[1-9]R?$|^ML[A-Z0-9]+$|"
                                  r"^(MCL|CM|CC|CS|CH|MV)[0-9]$")
#: Words that say a signal is not ECG whatever else its name holds: what bedside monitors
#: record beside it (breathing, pressures, oximetry, temperature) and what they derive
#: from it (a rate, a status, a quality index, a lead-off flag, pacing, a monitor's ST,
#: QT and PVC trends: ``ECG HR``, ``ECG Status``, ``ECG Lead Off``, ``ST-II``).
NOT_ECG_WORDS = frozenset({"HR", "RATE", "BPM", "PULSE", "STATUS", "SQI", "QUAL", "QUALITY",
                           "OFF", "LEADOFF", "PACE", "PACER", "SPO2", "SAO2", "PLETH", "PPG",
                           "RESP", "ABP", "NBP", "CVP", "PAP", "ICP", "ART", "TEMP", "CO2",
                           "ETCO2", "ST", "PVC", "QT", "QTC"})
#: A name that says so too, written in one word (``H.R.``, ``EKGRate``).
NOT_ECG_KEY = re.compile(r"^[HP]R$|(HR|RATE|BPM)$")
#: A signal whose name says it is not ECG unless it also names an ECG lead (what sleep
#: studies record beside it: brain, eye and muscle leads, the 10-20 system's derivations
#: such as ``C3-M2``, ``E1-M2``, ``T7-FT9`` and ``Cz-REF``, eye leads ``LOC``/``ROC``,
#: leg leads, effort belts, airflow, position, sound, light, activity, impedance).
NOT_ECG_NAME = re.compile(r"^(EEG|EOG|EMG|RESP|ABP|PAP|CVP|ICP|PLETH|PPG|SPO2|SAO2|NBP|BP|"
                          r"TEMP|FLOW|AIRFLOW|THOR|ABD|SNORE|NASAL|POS|SPEED|ACC|EVENT|"
                          r"MARKER|CHIN|LAT|RAT|LOC|ROC|CHEST|EFFORT|THERM|TERM|PRES|SOUND|"
                          r"CPAP|LIGHT|ACTIV|IMPED|(DX|SX)[0-9])|"
                          r"^(FP|AF|FC|FT|CP|TP|PO|[FCTPOAEMNI])[0-9Z]+"
                          r"((FP|AF|FC|FT|CP|TP|PO|[FCTPOAEMNI])[0-9Z]+|REF|AVG|LE)?$|"
                          r"LEG|CO2")
#: Units a lead may be declared in that are not a voltage: a lead in one is never read
#: unasked (compared lower case, without spaces). A unit neither these nor a voltage
#: (``adu``, ``NU``, ``counts``: raw values) leaves the choice to the lead's name.
NOT_VOLTAGE_UNITS = frozenset({"mmhg", "cmh2o", "kpa", "pa", "mm", "bpm", "/min", "1/min",
                               "pm", "breaths/min", "rpm", "%", "degc", "\u00b0c", "c", "degf",
                               "\u00b0f", "l/min", "l/s", "ml", "ml/s", "lpm", "s", "ms",
                               "g", "m/s2", "ohm", "ohms"})


def _words(name: str) -> list[str]:
    """A lead's name in words of ASCII letters and digits, upper case, as compatibility
    forms make them (``ECG \u2161`` and full-width letters are ``ECG II``; a dotless i is
    dropped, not read as I), without the index a shared name was given (``ECG#1``)."""
    text = unicodedata.normalize("NFKC", name.split("#")[0]).encode("ascii", "ignore")
    return re.findall(r"[A-Z0-9]+", text.decode().upper())


def _lead_key(name: str) -> str:
    """A lead's name as one word (:func:`_words` joined): ``EKG-II`` is ``EKGII``."""
    return "".join(_words(name))


def _leads_named(name: str) -> set[str]:
    """Which leads a name says it is: its words and its key without an ``ECG``, ``EKG``
    or ``LEAD`` prefix (``ECG II``, ``EKG-II`` and ``Lead II`` are ``II``), ``ML2`` read
    as ``MLII``, the European ``DII`` and ``D2`` as ``II``."""
    key = _lead_key(name)
    found = set(_words(name)) | {re.sub(r"^(ECG|EKG|LEAD)+(?=[A-Z0-9])", "", key)}
    aliases = {"ML2": "MLII", "DII": "II", "D2": "II"}
    return {aliases.get(lead, lead) for lead in found}


def _may_be_ecg(name: str) -> bool:
    """Whether a lead's name leaves it possibly ECG (:data:`NOT_ECG_WORDS`,
    :data:`NOT_ECG_KEY`, and :data:`NOT_ECG_NAME` unless a word of it names an ECG lead,
    :data:`ECG_WORD_OVER_OTHERS`)."""
    words, key = _words(name), _lead_key(name)
    if NOT_ECG_WORDS.intersection(words) or NOT_ECG_KEY.search(key):
        return False
    return not NOT_ECG_NAME.search(key) or any(ECG_WORD_OVER_OTHERS.search(word)
                                                for word in words)


def _named_as_ecg(name: str) -> bool:
    """Whether a lead's name says it is an ECG lead (:data:`ECG_NAME`, :data:`ECG_WORD`)."""
    return bool(ECG_NAME.search(_lead_key(name))
                or any(ECG_WORD.search(word) for word in _words(name)))


def is_ecg_lead(name: str, unit: str | None = None) -> bool:
    """Whether a lead is an ECG lead by its name and unit: named as one
    (:func:`_named_as_ecg`), not as another signal is (:func:`_may_be_ecg`: ``ECG HR``,
    ``ECG Status``), and not declared in a unit known not to be a voltage."""
    return _may_be_ecg(name) and _named_as_ecg(name) and not not_a_voltage(unit)


def not_a_voltage(unit: str | None) -> bool:
    """Whether a declared unit is known not to be a voltage (:data:`NOT_VOLTAGE_UNITS`)."""
    return (unit or "").strip().replace(" ", "").lower() in NOT_VOLTAGE_UNITS


def default_lead(path: str, names: list[str], units: list[str | None] | None = None) -> int:
    """The lead read when none is asked for, among the recording's leads that may be ECG:
    those neither named as another signal is (:func:`_may_be_ecg`) nor declared in a
    unit known not to be a voltage (:data:`NOT_VOLTAGE_UNITS`: a blood pressure in mmHg,
    a heart rate in bpm; a raw unit such as ``adu`` leaves the lead in). The first of
    :data:`PREFERRED_LEADS` among them; else the first named as an ECG lead is
    (:func:`_named_as_ecg`); else the first. A recording of none (a sleep study's EEG
    alone) is refused: analysed as ECG, its beats would be noise.

    Parameters
    ----------
    path : str
        The recording, for messages.
    names : list of str
        Its leads' names, as :func:`~anomaly.recordings.signals.distinct_names` makes them.
    units : list of str or None, optional
        Their declared units, where the recording declares them.

    Returns
    -------
    int
        The index of the lead to read; with a warning when none is named as ECG and the
        recording has others.

    Raises
    ------
    InputError
        When no lead may be ECG, naming the recording and its leads.
    """
    declared = list(units or []) + [None] * len(names)
    may_be = [index for index, name in enumerate(names)
              if _may_be_ecg(name) and not not_a_voltage(declared[index])]
    for preferred in PREFERRED_LEADS:
        for index in may_be:
            if preferred in _leads_named(names[index]):
                return index
    for index in may_be:
        if is_ecg_lead(names[index], declared[index]):
            return index
    if may_be:
        if len(names) > 1:  # A name that says nothing, among others: said which.
            from .. import logs

            logs.warning_once(f"Warning: {path}: no lead is named as ECG; reading "
                              f"{names[may_be[0]]} (of {listed(names)}): give --lead to "
                              "choose another")
        return may_be[0]

    raise InputError(f"{path}: none of its signals ({listed(names)}) is ECG by its name "
                     "or unit: give --lead NAME|INDEX to read one as ECG")


def listed(leads: list[str] | tuple[str, ...], most: int = 12) -> str:
    """``MLII, V1``: leads' names for a message, the first ``most`` of many, then how
    many there are in all."""
    if len(leads) <= most:
        return ", ".join(leads)
    return f"{', '.join(leads[:most])}, ... ({len(leads)} in all)"
