"""vigil-verify: checks a Vigil export package offline, trusting nothing of Vigil's server side.

Needs only the standard library, ``cryptography`` (Ed25519 signatures) and ``numpy`` (perceptual
hashes); ffmpeg, where present, for re-decoding segments whose bytes changed.
"""

__version__ = "1.0.0"
