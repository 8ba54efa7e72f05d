"""The beat's neighbours: how far a beat's code, and its samples, lie from those of the
beats the network trained on, as factors of its score.

The reconstruction error says how well the network redraws a beat. The code (the dense
network's ``code`` layer, 16 numbers by default) says where the beat lies among the shapes
it learned: a beat redrawn fairly well from a code no training beat has is still unlike
them. Measured on ECG5000's ten splits, the error times the code's distance ranks
anomalies above the error alone (ROC-AUC 0.9952 against 0.9901) and on MIT-BIH patient by
patient (0.9743 against 0.9668), but below it when the network trained on under about a
hundred beats, whose codes are too few to say what is near (docs/benchmarks.md, "Scores
beyond the mean absolute error"). The beat's scaled samples' distance from the training
beats' (LocalOutlierFactor's kind of term, no network in it) is a third factor: with every
fold's threshold it ranked better again on ECG5000 and MIT-BIH (docs/benchmarks.md, "The
samples' distance as a third factor, kept under every fold's threshold").

A :class:`CodeMemory` keeps what scoring needs, in the model directory's metadata:
k-means centroids of the training codes (at most :data:`MEMORY_SIZE`) and of their
samples (at most :data:`SAMPLE_MEMORY_SIZE`), each at most :data:`MAX_MEMORY_VALUES`
numbers, so that a beat's search costs a small share of the network's forward pass and
the metadata stays small; the number of neighbours averaged; and the medians that make
each factor 1 for a typical training beat. The score of a beat is then::

    error / median training error
      x  mean distance of its code to their nearest centroids / median
      x  mean distance of its samples to their nearest centroids / median

so that the threshold, mean + k x std of held-out beats' scores, reads as before, on a
score whose typical normal beat scores 1. (With ``threshold_source="training"`` the beats
that set it are those the memory was made of, which lie near a centroid: such a threshold
runs low, as the training beats' errors do.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..choices import CODE_DISTANCE_MIN_BEATS
from ..exceptions import shortened
from ..json_values import check_number, is_count, is_finite

#: Centroids averaged over, in both memories: a beat's distance is the mean of its
#: distances to this many nearest centroids (fewer when the codes have fewer centroids; a
#: memory of the samples is kept only with at least as many).
CODE_NEIGHBOURS = 5
#: Most centroids of the training codes kept: on ECG5000, 256 k-means centroids of 2,311
#: codes ranked as the codes themselves did (0.9948 against 0.9952), at a ninth of the
#: search.
MEMORY_SIZE = 256
#: Most centroids of the training beats' samples kept: 32, 64 and 256 of them ranked alike
#: in the product (ECG5000's ten splits: ROC-AUC 0.9951, 0.9952, 0.9952; MIT-BIH patient
#: by patient: 0.9777, 0.9778, 0.9779), and 32 cost the least to search.
SAMPLE_MEMORY_SIZE = 32
#: Most numbers either memory's centroids hold in all (centroids x width): 256 centroids of
#: a code up to 32 wide, fewer of a wider code; 32 of a beat up to 256 samples long, 10 of
#: MNIST's 784. Bounds the metadata (about 30 bytes a number as JSON) well under its 1 MB,
#: and a search's work. Beats too wide for :data:`CODE_NEIGHBOURS` centroids (over 1,638
#: samples) keep no memory of their samples.
MAX_MEMORY_VALUES = 8192
#: Smallest median any factor is divided by: a training set whose median error or
#: distance is 0 (beats redrawn exactly) is scaled by this instead, so scores stay finite.
MIN_MEDIAN = 1e-12
#: Most beats either memory's centroids are computed from (drawn at random beyond it): bounds the fit's
#: k-means on a large training set.
MAX_CLUSTERED = 20_000
#: Largest magnitude of a stored centroid value, in both memories: codes of a network
#: trained on scaled
#: inputs are of the order of 1 to 100, scaled samples of 0 to 1; this refuses crafted
#: metadata whose squares overflow.
MAX_CODE_VALUE = 1e12
#: Rows whose distances to every centroid are computed at once: bounds that matrix, and
#: keeps it in the caches (2,048 searched 100,000 codes in 0.11 s, 8,192 in 0.13 s).
ROWS_PER_SEARCH = 2048
#: The model directory format that first records a code memory, and the one that first
#: records its samples' centroids (``sample_centroids``, null when a fit kept none).
CODES_SINCE_FORMAT = 7
SAMPLES_SINCE_FORMAT = 8


@dataclass(frozen=True, eq=False)
class CodeMemory:
    """Centroids of the training beats' codes and samples, and the medians that scale a
    beat's score.

    Attributes
    ----------
    centroids : ndarray of shape (n_centroids, code_size)
    neighbours : int
        Centroids each distance is averaged over.
    error_median, distance_median : float
        The training beats' median error and median code distance (both > 0).
    sample_centroids : ndarray of shape (n_sample_centroids, n_samples) or None
        Centroids of the training beats' scaled samples (their context columns left out);
        None for a memory of the codes alone: a model directory of format 7, or a fit
        whose samples allow fewer than ``neighbours`` centroids (beats too wide, or too
        few distinct).
    sample_distance_median : float
        The training beats' median distance from ``sample_centroids`` (1 without them).
    """

    centroids: np.ndarray
    neighbours: int
    error_median: float
    distance_median: float
    sample_centroids: np.ndarray | None = None
    sample_distance_median: float = 1.0

    @classmethod
    def fit(cls, codes: np.ndarray, errors: np.ndarray, samples: np.ndarray | None = None, *,
            seed: int = 0) -> "CodeMemory":
        """The memory of the codes, errors and samples of the beats a network trained on.

        Parameters
        ----------
        codes : ndarray of shape (n, code_size)
        errors : ndarray of shape (n,)
            Their reconstruction errors (the detector's ``error_metric``).
        samples : ndarray of shape (n, n_samples), optional
            Their scaled samples, without context columns; None for a memory of the codes
            alone.
        seed : int
            Seeds the draw of :data:`MAX_CLUSTERED` beats and k-means.

        Returns
        -------
        CodeMemory
            Without ``sample_centroids`` when the samples allow fewer than ``neighbours``
            centroids (more than :data:`MAX_MEMORY_VALUES` // ``neighbours`` samples a
            beat, or fewer distinct beats): the score is then the error times the code's
            distance, as :attr:`anomaly.AutoencoderDetector.score_name` says.

        Raises
        ------
        InputError
            Fewer than two distinct codes (training beats all alike): no distance ranks; or
            a code too wide to keep two centroids of.
        """
        from ..exceptions import InputError

        codes = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
        if codes.shape[1] > MAX_MEMORY_VALUES // 2:
            raise InputError(f"a code of {codes.shape[1]:,} numbers is too wide to remember "
                             f"(at most {MAX_MEMORY_VALUES // 2:,}); fit with code_distance "
                             "'off'")
        drawn = (np.arange(len(codes)) if len(codes) <= MAX_CLUSTERED else
                 np.random.default_rng(seed).choice(len(codes), MAX_CLUSTERED, replace=False))
        centroids = _centroids(codes[drawn], MEMORY_SIZE, 2, seed)
        if centroids is None:
            raise InputError("the training beats all have the same code; the code's distance "
                             "cannot rank beats (fit with code_distance 'off')")
        neighbours = min(CODE_NEIGHBOURS, len(centroids))
        sample_centroids = None
        if samples is not None:
            samples = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
            sample_centroids = _centroids(samples[drawn], SAMPLE_MEMORY_SIZE, neighbours, seed)
        return cls(centroids, neighbours, _positive_median(errors),
                   _positive_median(nearest_distances(codes, centroids, neighbours)),
                   sample_centroids,
                   1.0 if sample_centroids is None else _positive_median(
                       nearest_distances(samples, sample_centroids, neighbours)))

    def distances(self, codes: np.ndarray) -> np.ndarray:
        """Mean Euclidean distance of each code to its ``neighbours`` nearest centroids,
        shape ``(n,)``."""
        return nearest_distances(codes, self.centroids, self.neighbours)

    def sample_distances(self, samples: np.ndarray) -> np.ndarray:
        """Mean Euclidean distance of each beat's scaled samples to its ``neighbours``
        nearest ``sample_centroids``, shape ``(n,)``; ones without them."""
        if self.sample_centroids is None:
            return np.ones(len(samples))
        return nearest_distances(samples, self.sample_centroids, self.neighbours)

    def scores(self, errors: np.ndarray, codes: np.ndarray, samples: np.ndarray
               ) -> np.ndarray:
        """The score of beats with these errors, codes and scaled samples: the product of
        the error and the distances, each over its training median (1 for a typical
        training beat)."""
        return (np.asarray(errors, dtype=np.float64) / self.error_median
                * self.distances(codes) / self.distance_median
                * self.sample_distances(samples) / self.sample_distance_median)

    @property
    def code_size(self) -> int:
        return self.centroids.shape[1]

    @property
    def sample_size(self) -> int | None:
        """The samples a beat has in ``sample_centroids`` (None without them)."""
        return None if self.sample_centroids is None else self.sample_centroids.shape[1]

    def to_json(self) -> dict[str, Any]:
        """The ``code_memory`` section of a model directory's metadata (of format
        :data:`SAMPLES_SINCE_FORMAT`: ``sample_centroids`` null when it has none)."""
        data = {"centroids": self.centroids.tolist(), "neighbours": self.neighbours,
                "error_median": self.error_median, "distance_median": self.distance_median,
                "sample_centroids": None}
        if self.sample_centroids is not None:
            data.update(sample_centroids=self.sample_centroids.tolist(),
                        sample_distance_median=self.sample_distance_median)
        return data

    @classmethod
    def from_json(cls, data: Any, format_version: int) -> "CodeMemory":
        """The memory :meth:`to_json` wrote, in a model directory of ``format_version``;
        ValueError naming what is malformed.

        From format :data:`SAMPLES_SINCE_FORMAT` the ``sample_centroids`` key is required
        (null for none), so that a directory whose third factor was removed is refused
        rather than scored without it against a threshold set with it; before it, the key
        is refused.
        """
        if format_version < CODES_SINCE_FORMAT:
            raise ValueError(f"'code_memory' in a directory of format {format_version} "
                             f"(from format {CODES_SINCE_FORMAT})")
        if not isinstance(data, dict):
            raise ValueError("'code_memory' must be an object")
        records_samples = format_version >= SAMPLES_SINCE_FORMAT
        if records_samples != ("sample_centroids" in data):
            raise ValueError(
                f"'code_memory.sample_centroids' {'missing' if records_samples else 'given'} "
                f"in a directory of format {format_version} (recorded, null for none, from "
                f"format {SAMPLES_SINCE_FORMAT})")
        centroids = _centroids_from_json(data.get("centroids"), "centroids", MEMORY_SIZE)
        sample_centroids = (None if data.get("sample_centroids") is None else
                            _centroids_from_json(data["sample_centroids"], "sample_centroids",
                                                 SAMPLE_MEMORY_SIZE))
        if sample_centroids is None and "sample_distance_median" in data:
            raise ValueError("'code_memory.sample_distance_median' given without "
                             "'code_memory.sample_centroids'")
        neighbours = data.get("neighbours")
        fewest = min(len(kept) for kept in (centroids, sample_centroids) if kept is not None)
        if not is_count(neighbours) or neighbours > fewest:
            raise ValueError(f"'code_memory.neighbours' must be an integer from 1 to {fewest} "
                             "(the fewest centroids of a memory), got "
                             f"{shortened(repr(neighbours))}")
        keys = ["error_median", "distance_median"] + (
            [] if sample_centroids is None else ["sample_distance_median"])
        medians = [check_number(data.get(key), f"code_memory.{key}") for key in keys]
        for key, median in zip(keys, medians):
            if median < MIN_MEDIAN:
                raise ValueError(f"'code_memory.{key}' must be at least {MIN_MEDIAN:g}, got "
                                 f"{median:g}")
        return cls(centroids, neighbours, *medians[:2], sample_centroids,
                   *medians[2:])


def nearest_distances(rows: np.ndarray, centroids: np.ndarray, neighbours: int
                      ) -> np.ndarray:
    """Mean Euclidean distance of each of ``rows`` to its ``neighbours`` nearest
    ``centroids``, shape ``(n,)``."""
    rows = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
    # |x - c|^2 = |x|^2 + |c|^2 - 2 x.c: the nearest centroids are those of the least
    # |c|^2 - 2 x.c, so |x|^2 is added to the few kept only (measured: 2.4 times
    # faster than the whole sum, and partitioned in place).
    minus_twice = -2.0 * centroids.T
    squared_centroids = np.einsum("ij,ij->i", centroids, centroids)
    with _one_blas_thread():
        parts = [_nearest(rows[start:start + ROWS_PER_SEARCH], minus_twice, squared_centroids,
                          neighbours)
                 for start in range(0, len(rows), ROWS_PER_SEARCH)]
    return np.concatenate(parts) if parts else np.empty(0)


def _nearest(rows: np.ndarray, minus_twice: np.ndarray, squared_centroids: np.ndarray,
             neighbours: int) -> np.ndarray:
    """The mean distance of ``rows`` to their ``neighbours`` nearest centroids."""
    partial = rows @ minus_twice
    partial += squared_centroids
    partial.partition(neighbours - 1, axis=1)
    nearest = partial[:, :neighbours] + np.einsum("ij,ij->i", rows, rows)[:, None]
    return np.sqrt(np.maximum(nearest, 0.0)).mean(axis=1)


def _centroids(points: np.ndarray, most: int, fewest: int, seed: int) -> np.ndarray | None:
    """k-means centroids of ``points``: at most ``most``, :data:`MAX_MEMORY_VALUES` values
    in all, half as many as the points and as many as the distinct points, but at least
    ``fewest``; None when fewer than ``fewest`` are possible (the points too wide, or too
    few distinct)."""
    from sklearn.cluster import KMeans

    widest = MAX_MEMORY_VALUES // points.shape[1]
    if widest < fewest:
        return None
    distinct = len(np.unique(points, axis=0))
    if distinct < fewest:
        return None
    size = max(fewest, min(most, widest, len(points) // 2, distinct))
    return KMeans(size, n_init=1, random_state=seed).fit(points).cluster_centers_


def _centroids_from_json(centroids: Any, key: str, most: int) -> np.ndarray:
    """``code_memory.<key>`` as written: ValueError naming what is malformed."""
    if not isinstance(centroids, list) or not 2 <= len(centroids) <= most:
        got = (f"a list of {len(centroids):,}" if isinstance(centroids, list)
               else f"a JSON {type(centroids).__name__}")
        raise ValueError(f"'code_memory.{key}' must be a list of 2 to {most} lists of "
                         f"numbers, got {got}")
    if not all(isinstance(row, list) and row for row in centroids):
        raise ValueError(f"'code_memory.{key}' rows must be non-empty lists of numbers")
    width = len(centroids[0])
    uneven = next((row for row in centroids if len(row) != width), None)
    if uneven is not None:
        raise ValueError(f"'code_memory.{key}' rows must all be of one length: the first "
                         f"has {width:,} numbers, another {len(uneven):,}")
    if len(centroids) * width > MAX_MEMORY_VALUES:
        raise ValueError(f"'code_memory.{key}' hold {len(centroids) * width:,} numbers; "
                         f"at most {MAX_MEMORY_VALUES:,} are loaded")
    if not all(is_finite(value) and abs(value) <= MAX_CODE_VALUE
               for row in centroids for value in row):
        raise ValueError(f"'code_memory.{key}' must hold finite numbers of at most "
                         f"{MAX_CODE_VALUE:g} in magnitude")
    return np.array(centroids, dtype=np.float64)


def _positive_median(values: np.ndarray) -> float:
    """The median of ``values``, at least :data:`MIN_MEDIAN`, so that dividing by it is
    defined and bounded."""
    return max(float(np.median(np.asarray(values, dtype=np.float64))), MIN_MEDIAN)


def _one_blas_thread():
    """The search's matrix products on one BLAS thread: scoring parses the next block in
    a second thread meanwhile (:mod:`anomaly.scoring.pipeline`), and on 2 cores BLAS's
    own threads took the parser's core (100,000 beats scored at 78,000 a second instead
    of 99,000, measured). threadpoolctl's cached view of the libraries loaded: finding
    them afresh (``threadpool_limits``) reads the process's memory map, 0.4 ms a search in
    the service, whose one-beat requests are scored in about as much."""
    from threadpoolctl import get_cached_controller

    return get_cached_controller().limit(limits=1, user_api="blas")


def code_size(memory: CodeMemory | None) -> int | None:
    """The code width a model with ``memory`` outputs (None without one)."""
    return None if memory is None else memory.code_size


def uses_code_distance(params: dict[str, Any], traces: np.ndarray) -> bool:
    """Whether a detector with these parameters, fitted on ``traces``, scores by its code's
    distance: ``"on"``, or ``"auto"`` for the dense family on at least
    :data:`anomaly.choices.CODE_DISTANCE_MIN_BEATS` traces that are not all the same."""
    if params["code_distance"] == "auto":
        return (params["model"] == "dense" and len(traces) >= CODE_DISTANCE_MIN_BEATS
                and bool(np.any(traces != traces[:1])))
    return params["code_distance"] == "on"
