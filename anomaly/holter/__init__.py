"""What a Holter reader reads from a recording's beats, beyond each beat's score.

- :mod:`~anomaly.holter.analysis`: a recording's beats as the analysis keeps them (their
  times, timing, readability, shape and P wave) and :func:`~.analysis.analyse_beats`,
  which runs the rest;
- :mod:`~anomaly.holter.families`: morphology families, the dominant one and those of
  ectopic shape;
- :mod:`~anomaly.holter.atrial`: atrial fibrillation episodes from the RR series and the
  P waves;
- :mod:`~anomaly.holter.events`: couplets, runs, bigeminy, trigeminy, pauses, brady- and
  tachycardia;
- :mod:`~anomaly.holter.heart_rate`: the heart rate over the recording and the standard
  time-domain heart-rate variability of its normal-to-normal intervals;
- :mod:`~anomaly.holter.episodes`: a stretch of a recording with a rhythm, and how two
  lists of them agree (by duration, episode by episode);
- :mod:`~anomaly.holter.summary`: a scored recording's rhythm as its reports give it;
- :mod:`~anomaly.holter.reference`: a WFDB annotation file's rhythm episodes, to measure
  against.

No TensorFlow here; what reads a recording is imported when one is read.
"""
