"""Human-readable numbers for learners: `671.0 B params`, `68.6 KiB`, `3.7 days`."""

from __future__ import annotations

from course import validate

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def fmt_bytes(n: float) -> str:
    """Binary units: fmt_bytes(70272) == '68.6 KiB'."""
    n = validate.number("n", n)
    for unit in _BINARY:
        if abs(n) < 1024 or unit == _BINARY[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def fmt_count(n: float, unit: str = "") -> str:
    """Decimal SI-style counts: fmt_count(671.03e9, 'params') == '671.0 B params'."""
    n = validate.number("n", n)
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            text = f"{n / scale:.1f} {suffix}"
            break
    else:
        text = f"{n:.0f}" if n == int(n) else f"{n:.3g}"
    return f"{text} {unit}".strip()


def fmt_seconds(s: float) -> str:
    """fmt_seconds(0.0123) == '12.3 ms'; fmt_seconds(3.7 * 86400) == '3.7 days'."""
    s = validate.number("s", s)
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    for scale, unit in ((365.25 * 86400, "years"), (86400, "days"), (3600, "hours"),
                        (60, "minutes")):
        if s >= scale:
            return f"{s / scale:.1f} {unit}"
    return f"{s:.2f} s"


def gib(n_bytes: float) -> float:
    return validate.number("n_bytes", n_bytes) / 2**30


def gb(n_bytes: float) -> float:
    return validate.number("n_bytes", n_bytes) / 1e9
