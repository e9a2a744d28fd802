"""How long footage is kept: COMPLIANCE retention days per footage category.

A domain rule, not an S3 detail: the S3 store applies it as Object Lock retention, the
catalogue's retention service reports and extends by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class RetentionPolicy:
    """COMPLIANCE retention in days per footage category; unknown or no category: default."""

    default_days: int = 183
    by_category: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        days = [self.default_days, *self.by_category.values()]
        if any(d < 1 for d in days):
            raise ValueError("retention periods are at least 1 day")
        object.__setattr__(self, "by_category", MappingProxyType(dict(self.by_category)))

    def days_for(self, category: str | None) -> int:
        if category is None:
            return self.default_days
        return self.by_category.get(category, self.default_days)


DEFAULT_RETENTION = RetentionPolicy()
