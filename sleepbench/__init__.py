"""sleepbench: five published sleep and respiratory deep-learning methods as one benchmark."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sleepbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
