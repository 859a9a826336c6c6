"""Confidentiality check: 「この情報を、このサービスに入れていい？」 as a cited verdict."""

from service.check.engine import CheckEngine, find_span
from service.check.rules import CheckRules, load_rules

__all__ = ["CheckEngine", "CheckRules", "load_rules", "find_span"]
