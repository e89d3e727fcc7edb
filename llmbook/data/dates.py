"""Human-readable dates in English, French, German and Chinese paired with their ISO form (babel), seeded."""
from __future__ import annotations

import datetime as dt

import numpy as np

from .pairs import ParallelSplits

LOCALES = ("en_US", "fr_FR", "de_DE", "zh_CN")
# Unambiguous CLDR formats only: "short" is left out (2-digit years, month/day order differs by locale).
FORMATS = ("full", "long", "medium")
FIRST, LAST = dt.date(1900, 1, 1), dt.date(2099, 12, 31)


def format_human(day: dt.date, locale: str, fmt: str) -> str:
    """`day` written as a person of `locale` would, e.g. 'mardi 10 mars 2037' or '2037年3月10日星期二'."""
    try:
        from babel.dates import format_date
    except ImportError as e:
        raise ImportError("the dates corpus needs the PyPI package `babel` (`pip install babel`)") from e
    if locale not in LOCALES or fmt not in FORMATS:
        raise ValueError(f"locale must be one of {LOCALES} and fmt one of {FORMATS}; got {locale!r}, {fmt!r}")
    return format_date(day, fmt, locale=locale)


def dates(n_train: int = 20000, n_validation: int = 1000, n_test: int = 1000, seed: int = 0) -> ParallelSplits:
    """Random days between 1900 and 2099, each written in a random locale and format; no day in two splits."""
    n = n_train + n_validation + n_test
    span = (LAST - FIRST).days + 1
    if n > span:
        raise ValueError(f"asked for {n} distinct days but only {span} exist between {FIRST} and {LAST}")
    rng = np.random.default_rng(seed)
    days = rng.choice(span, size=n, replace=False)
    locales = rng.integers(0, len(LOCALES), n)
    formats = rng.integers(0, len(FORMATS), n)
    pairs = []
    for d, loc, fmt in zip(days, locales, formats):
        day = FIRST + dt.timedelta(days=int(d))
        pairs.append((format_human(day, LOCALES[loc], FORMATS[fmt]), day.isoformat()))
    return ParallelSplits(pairs[:n_train], pairs[n_train:n_train + n_validation], pairs[n_train + n_validation:])
