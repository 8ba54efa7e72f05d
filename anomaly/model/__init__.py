"""The fitted model: one owner per fact, composed by the detector.

- :mod:`.detector`: :class:`AutoencoderDetector`, fit / score / predict / reconstruct /
  encode, save and load (scikit-learn's estimator contract);
- :mod:`.parameters`: what each parameter may be, as a table, and its one check;
- :mod:`.scaling`: :class:`Scaling`, an input's shape and layout (samples, then context
  columns) and its min-max scaling;
- :mod:`.training`: one network trained on a schedule; :mod:`.networks` builds the Keras
  autoencoders (dense, convolutional, variational), :mod:`.denoising` a training mode;
- :mod:`.errors`: the reconstruction error of an input, the score or its first factor;
  :mod:`.code_memory`: the factors of its code's and samples' distances from the
  training beats';
- :mod:`.threshold`: mean + k x std, whose errors set it (:class:`Calibration`);
- :mod:`.context`: the contexts a model may predict besides a beat's samples;
- :mod:`.provenance`: where the training beats came from (:class:`Provenance`);
- :mod:`.directory`: the only reader and writer of a model directory;
- :mod:`.runtimes`: what runs a model forward when scoring (Keras, onnxruntime).

Nothing here imports TensorFlow until a network is built, trained or loaded with Keras.
"""

from .detector import AutoencoderDetector
from .provenance import Provenance, RecordingOrigin

__all__ = ["AutoencoderDetector", "Provenance", "RecordingOrigin"]
