"""What a Holter reader reads from a recording's beats, beyond each beat's score.

- :mod:`~anomaly.holter.episodes`: a stretch of a recording with a rhythm (its start and
  end), and how two lists of them agree by duration;
- :mod:`~anomaly.holter.atrial`: atrial fibrillation episodes from the RR series;
- :mod:`~anomaly.holter.heart_rate`: the heart rate over the recording and the standard
  time-domain heart-rate variability of its normal-to-normal intervals.

These take what scoring produced (each beat's time, whether it is of the dominant shape,
whether its stretch could be read), as arrays: no TensorFlow, no signal.
"""
