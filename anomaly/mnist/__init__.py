"""MNIST tooling on the shared autoencoder family: ``anomaly mnist ...``.

``data`` loads the digits, ``train`` fits an :class:`anomaly.model.AutoencoderDetector`
and measures it, ``metrics`` holds the image figures, ``pictures`` the PNGs; the command is
:mod:`anomaly.cli.mnist`. Importing this package imports nothing heavy.
"""
