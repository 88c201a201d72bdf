"""The course: the session each notebook starts with (:func:`setup`), the notebooks as files
(:mod:`rockseg.course.notebooks`) and their one-command reproduction
(:mod:`rockseg.course.reproduce`)."""
from __future__ import annotations

from rockseg.course.session import setup

__all__ = ["setup"]
