"""ECG recordings: from a continuous recording to scored, time-stamped beats.

- :mod:`~anomaly.recordings.signals`: opening a recording (a WFDB record, an EDF/EDF+ file,
  or a CSV of samples per lead), choosing its lead and reading it in chunks;
- :mod:`~anomaly.recordings.times`: ``--from``/``--to`` times (seconds or ``[hh:]mm:ss``);
- :mod:`~anomaly.recordings.filters`: the 0.5-40 Hz band-pass every beat and strip sees;
- :mod:`~anomaly.recordings.peaks`: the R-peak detector, chosen by measurement on MIT-BIH;
- :mod:`~anomaly.recordings.segment`: beats cut around their R peaks, with their RR
  context, streamed chunk by chunk;
- :mod:`~anomaly.recordings.annotations`: the reference labels of a WFDB annotation file,
  as AAMI classes matched to the detected beats.

No TensorFlow here; wfdb, edfio and the detector are imported when a recording is read.
"""
