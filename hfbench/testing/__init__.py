"""Conformance checks and framework-free oracles for backends."""

from .conformance import CheckResult, ConformanceError, ConformanceReport, check_backend
from .reference import DenseReference

__all__ = ["CheckResult", "ConformanceError", "ConformanceReport", "DenseReference", "check_backend"]
