"""Exceptions raised for bad input. Each message names the file and the problem."""
from __future__ import annotations


class RocksegError(Exception):
    """Base class for every error rockseg raises on purpose."""


class DataError(RocksegError, ValueError):
    """A file or array is unreadable, malformed or inconsistent."""

    def __init__(self, message: str, path=None):
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class MaskError(DataError):
    """A mask holds colours or values that are not in the class map."""


class RegistryError(RocksegError, KeyError):
    """An unknown dataset, model or backbone name."""

    def __str__(self):  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class HashMismatchError(DataError):
    """A downloaded or offline file does not have the registered hash."""


class OutputExistsError(RocksegError, FileExistsError):
    """Refusing to overwrite something the user owns."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class RegistrationError(RocksegError, ValueError):
    """Registration did not converge or gave an implausible transform."""
