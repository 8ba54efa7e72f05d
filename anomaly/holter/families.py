"""Morphology families: the beats of a recording grouped by shape, as Holter software
groups them into templates so that a person reviews a family at a time, not a beat.

Each beat's shape is its window from :data:`SHAPE_BEFORE_S` before its R peak to
:data:`SHAPE_AFTER_S` after it (the QRS complex and the start of the ST segment: what
tells a ventricular beat from a normally conducted one; the P wave and the T wave vary
with the rate and are left to the rhythm). Beats are taken in time order: a beat joins
the family whose template (the mean of its members' shapes, each centred and scaled to
unit norm) it correlates best with, if that correlation is at least
:data:`JOIN_CORRELATION`, and otherwise starts a family of its own (Holter software's
template matching). Once every beat has a family, each beat is assigned again to the
template it matches best, so that an early beat is not held by a template made before
its family grew. Beats of a stretch that could not be read belong to no family.

The **dominant** family is the largest among the beats on time (not premature: most
ectopic beats come early, and in bigeminy the two families are equal in size). A family
is of **normal shape** (normally conducted beats whose QRS changed a little with the
rate, the position or the lead's contact) when its template correlates with the dominant
one's, shifted by up to :data:`SHIFT_SECONDS` where they match best (a QRS whose R and S
waves are of a size is found at either), at least :data:`NORMAL_CORRELATION`, or at
least :data:`NEAR_CORRELATION` and most of its beats come on time (a family of a
somewhat different shape whose beats come early is what ventricular ectopy looks like),
or its beats nearly all come on time and its complex is not wide (:data:`CONDUCTED_SHARE`),
and unless its beats nearly all come early (:data:`EARLY_SHARE`) and its complex is wider
than the dominant one's (:data:`WIDE`), or they mostly come right after a beat of ectopic
shape and either come early or are wide (:data:`FOLLOWING_LEAST`). The others are
**ectopic by shape** (ventricular beats, and artefacts). Measured against MIT-BIH's
reference labels by ``scripts/benchmark_rhythm.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..recordings.patient import PREMATURE_RATIO, unit_rows
from .windows import window_slice

#: The shape of a beat: this long before its R peak ...
SHAPE_BEFORE_S = 0.10
#: ... to this long after it.
SHAPE_AFTER_S = 0.20
#: The least correlation of a beat with a family's template for it to join the family.
JOIN_CORRELATION = 0.95
#: The least correlation of a family's template with the dominant one's for the family to
#: be of normal shape ...
NORMAL_CORRELATION = 0.90
#: ... or for it to be so when most of its beats come on time.
NEAR_CORRELATION = 0.80
#: How far two templates may be shifted against each other when they are compared: a
#: beat's R peak is the largest magnitude of its QRS, which in a QRS whose R and S waves
#: are of a size is the R wave in some beats and the S wave in others (MIT-BIH 117: two
#: families of the same beats 25 ms apart, correlating -0.47 unshifted and 0.94 shifted).
SHIFT_SECONDS = 0.05
#: How much wider than the dominant family's complex (:func:`spread`) a family's must be
#: to be wide, as a ventricular complex is: in atrial fibrillation, for a family of
#: ectopic shape to count as ventricular (:data:`.analysis.WIDER_IN_AF`), chosen among
#: 1.1, 1.2, 1.3 and 1.5 on MIT-BIH at 360 Hz (outside the repository); and for a family
#: of early beats to be of ectopic shape (:data:`EARLY_SHARE`), not tuned again.
#: ``scripts/benchmark_rhythm.py`` measures both (docs/benchmarks.md).
WIDE = 1.2
#: A family of which at most this share of beats come on time, and which is :data:`WIDE`,
#: is of ectopic shape whatever its likeness: a ventricular beat comes early and is wide
#: (MIT-BIH 214's PVCs correlate 0.95 with its bundle branch block's beats).
EARLY_SHARE = 0.2
#: A family of which at least this share of beats come on time, not :data:`WIDE`, is of
#: normal shape whatever its likeness and its size: a narrow complex on time is
#: conducted, its shape changed by the lead's position or contact (MIT-BIH 108 and 111).
#: Of the families of ectopic shape it would take on the 44 records at 360 Hz, those of 3
#: beats or more held 391 N, 1 F and 1 V beats; those of 1 or 2, 48 N, 4 F and 5 V
#: (109's, beside its bundle branch block's beats).
CONDUCTED_SHARE = 0.8
#: A family :data:`WIDE` or of early beats (:data:`EARLY_SHARE`) of which most beats, and
#: at least this many, come right after a beat of ectopic shape is of ectopic shape
#: whatever its likeness: in a ventricular tachycardia whose complexes alternate, every
#: other beat may look like the dominant one and come on time at the run's own rate
#: (MIT-BIH 223's 55 s and 39 s ones, all labelled V, read as bigeminy), and a run may
#: hold early beats as narrow as the dominant ones (200's, broken by them). The beats
#: after a PVC in bigeminy are of normal width and on time.
FOLLOWING_LEAST = 3
#: The most families a recording gets; beyond, a beat joins the nearest (noise and
#: artefacts would otherwise make a family each).
MAX_FAMILIES = 100
#: A beat whose interval from the previous one is below this share of the local mean is
#: premature, as a patient's training beats are chosen.
ON_TIME_RATIO = PREMATURE_RATIO
#: The family of a beat that belongs to none (its stretch could not be read).
NO_FAMILY = -1


@dataclass(frozen=True)
class Families:
    """The morphology families of a recording's beats.

    Attributes
    ----------
    family : ndarray of int, shape (n,)
        Per beat, its family (0 the largest, then by size), or :data:`NO_FAMILY`.
    templates : ndarray, shape (f, m)
        Each family's template (unit norm, centred): the mean shape of its members.
    counts : ndarray of int, shape (f,)
    dominant : int
        The dominant family (see the module's docstring), -1 when no beat has a family.
    normal_shape : ndarray of bool, shape (f,)
        Per family: of normal shape, normally conducted (by the rules of the module's
        docstring: mostly its likeness to the dominant family, and its width and timing).
    representative : ndarray of int, shape (f,)
        Per family, its most typical beat (the member most like its template; in a
        family of normal shape, the on-time member most like it, where it has one): the
        beat a report shows for it.
    """

    family: np.ndarray
    templates: np.ndarray
    counts: np.ndarray
    dominant: int
    normal_shape: np.ndarray
    representative: np.ndarray

    def __len__(self) -> int:
        return len(self.counts)

    def wider_than_dominant(self, ratio: float) -> np.ndarray:
        """Per beat: in a family whose complex spreads over at least ``ratio`` times as
        many samples as the dominant family's (:func:`spread`; every family, when the
        dominant one's spreads over none); beats without a family are not."""
        if self.dominant < 0:
            return np.zeros(len(self.family), bool)
        return self._per_beat(_wide(self.templates, self.dominant, ratio))

    @property
    def alone(self) -> np.ndarray:
        """Per beat: the only beat of its family (beats without a family are not)."""
        return self._per_beat(self.counts == 1)

    @property
    def ectopic(self) -> np.ndarray:
        """Per beat: in a family not of normal shape (beats without a family are not)."""
        return self._per_beat(~self.normal_shape)

    def _per_beat(self, per_family: np.ndarray) -> np.ndarray:
        """A flag per family, given to each of its beats (False for beats of none)."""
        has = self.family != NO_FAMILY
        flags = np.zeros(len(self.family), bool)
        flags[has] = per_family[self.family[has]]
        return flags


def spread(template: np.ndarray) -> int:
    """How many samples a template's complex spreads over: those holding the middle 80%
    of its slope's energy (its squared first differences), in whole samples (5 ms in a
    shape cut by the analysis window). A ventricular complex, slow to spread through the
    muscle, is wide; a normally conducted one narrow, and so is one whose shape F waves
    or a partly aberrant conduction changed (a fully aberrant one, a bundle branch
    block, is wide too). 0 for a flat template."""
    energy = np.cumsum(np.diff(np.asarray(template, dtype=np.float64)) ** 2)
    if not (energy.size and energy[-1] > 0):
        return 0
    energy /= energy[-1]
    return int(np.searchsorted(energy, 0.9) - np.searchsorted(energy, 0.1))


def _wide(templates: np.ndarray, dominant: int, ratio: float) -> np.ndarray:
    """Per family: its template's complex spreads over at least ``ratio`` times as many
    samples as the ``dominant`` family's (:func:`spread`)."""
    spreads = np.array([spread(template) for template in templates])
    return spreads >= ratio * spreads[dominant]


def shape_slice(before_s: float, after_s: float, samples: int) -> slice:
    """Which of a beat window's ``samples`` values (``before_s`` before the R peak to
    ``after_s`` after) are its shape; ValueError when the window does not hold it."""
    return window_slice(before_s, after_s, samples, start_s=-SHAPE_BEFORE_S,
                        stop_s=SHAPE_AFTER_S, what="a beat's shape")


def beat_families(shapes: np.ndarray, on_time: np.ndarray, *,
                  readable: np.ndarray | None = None) -> Families:
    """The morphology families of a recording's beats.

    Parameters
    ----------
    shapes : ndarray, shape (n, m)
        The beats' shapes (their windows' values in :func:`shape_slice`), in time order.
    on_time : ndarray of bool, shape (n,)
        Beats not premature (see :data:`ON_TIME_RATIO`), each judged against the mean of
        the last intervals alone: not :func:`.analysis.premature_beats`, whose
        supraventricular runs, read as premature here too, made 2 more false ventricular
        tachycardias in MIT-BIH 222's flutter (docs/benchmarks.md); its sinus stretches
        were not tried here.
    readable : ndarray of bool, shape (n,), optional
        False for beats of a stretch that could not be read: no family.

    Returns
    -------
    Families
    """
    count = len(shapes)
    readable = np.ones(count, bool) if readable is None else np.asarray(readable, bool)
    members = np.flatnonzero(readable)
    family = np.full(count, NO_FAMILY)
    if len(members) == 0:
        empty = np.zeros((0, shapes.shape[1]))
        return Families(family, empty, np.zeros(0, int), -1, np.zeros(0, bool),
                        np.zeros(0, int))
    shapes = unit_rows(np.asarray(shapes, dtype=np.float32)[members])
    templates = _match_in_order(shapes)
    assigned = _nearest(shapes, templates)
    # Families by size, largest first; a template no beat chose any more is dropped.
    sizes = np.bincount(assigned, minlength=len(templates))
    order = np.argsort(-sizes, kind="stable")[:np.count_nonzero(sizes)]
    renumber = np.empty(len(templates), int)
    renumber[order] = np.arange(len(order))
    assigned = renumber[assigned]
    templates = np.stack([unit_rows(shapes[assigned == index].sum(axis=0, keepdims=True,
                                                                 dtype=np.float64))[0]
                          for index in range(len(order))])
    family[members] = assigned
    counts = np.bincount(assigned, minlength=len(order))
    timely = np.bincount(assigned[np.asarray(on_time, bool)[members]], minlength=len(order))
    dominant = int(np.argmax(timely)) if timely.any() else 0
    likeness = _shifted_likeness(templates, templates[dominant],
                                int(round(SHIFT_SECONDS * shapes.shape[1]
                                          / (SHAPE_BEFORE_S + SHAPE_AFTER_S))))
    wide = _wide(templates, dominant, WIDE)
    early = timely <= EARLY_SHARE * counts
    early_and_wide = early & wide
    conducted = (timely >= CONDUCTED_SHARE * counts) & ~wide
    normal_shape = ((likeness >= NORMAL_CORRELATION) | conducted | (
        (likeness >= NEAR_CORRELATION) & (2 * timely >= counts))) & ~early_and_wide
    normal_shape[dominant] = True
    # Judged once, on the families of ectopic shape found so far: a family this makes
    # ectopic does not make another one so.
    previous = np.concatenate(([NO_FAMILY], family[:-1]))[members]
    has_previous = previous != NO_FAMILY
    after_ectopic = np.zeros(len(members), bool)
    after_ectopic[has_previous] = ~normal_shape[previous[has_previous]]
    following = np.bincount(assigned[after_ectopic], minlength=len(order))
    follows_ectopy = (wide | early) & (2 * following > counts) & (following >= FOLLOWING_LEAST)
    follows_ectopy[dominant] = False
    normal_shape &= ~follows_ectopy
    likeness_to_own = np.einsum("ij,ij->i", shapes, templates.astype(np.float32)[assigned])
    # A family of normal shape is shown by a beat on time, where it has one: its most
    # typical beat was a premature one (MIT-BIH 232's dominant family, "S" under it).
    premature = ~np.asarray(on_time, bool)[members] & normal_shape[assigned]
    by_family = np.lexsort((-likeness_to_own, premature, assigned))
    representative = members[by_family[np.searchsorted(assigned[by_family],
                                                       np.arange(len(order)))]]
    return Families(family, templates, counts, dominant, normal_shape, representative)


def _shifted_likeness(templates: np.ndarray, reference: np.ndarray, shift: int
                      ) -> np.ndarray:
    """Each of ``templates`` (shape ``(f, m)``) correlated with ``reference`` (``m``) at
    the shift of at most ``shift`` samples either way where they correlate best, over
    the samples they then share (each centred and scaled there). The shift is under half
    the width: over a few shared samples any two shapes correlate."""
    width = templates.shape[1]
    if not 0 <= shift < width // 2:
        raise ValueError(f"expected a shift of 0 to {width // 2 - 1} samples for shapes of "
                         f"{width}, got {shift}")
    best = np.full(len(templates), -1.0)
    for lag in range(-shift, shift + 1):
        ours = unit_rows(templates[:, max(0, lag):width + min(0, lag)].astype(np.float64))
        theirs = unit_rows(reference[None, max(0, -lag):width + min(0, -lag)]
                           .astype(np.float64))[0]
        best = np.maximum(best, ours @ theirs)
    return best


def _nearest(shapes: np.ndarray, templates: np.ndarray, block: int = 8192) -> np.ndarray:
    """The template each shape correlates with best, a block of shapes at a time (a
    day's beats against a hundred templates would otherwise be one large matrix)."""
    return np.concatenate([np.argmax(shapes[start:start + block] @ templates.T, axis=1)
                           for start in range(0, len(shapes), block)])


def _match_in_order(shapes: np.ndarray) -> np.ndarray:
    """The templates of Holter template matching, the beats taken in order."""
    sums = np.zeros((MAX_FAMILIES, shapes.shape[1]))
    templates = np.zeros_like(sums)
    made = 0
    for shape in shapes:
        if made:
            fits = templates[:made] @ shape
            best = int(np.argmax(fits))
            if fits[best] < JOIN_CORRELATION and made < MAX_FAMILIES:
                best = made
                made += 1
        else:
            best, made = 0, 1
        sums[best] += shape
        templates[best] = sums[best] / max(np.linalg.norm(sums[best]), 1e-12)
    return templates[:made]
