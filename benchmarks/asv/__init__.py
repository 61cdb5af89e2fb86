"""asv benchmarks (filled in by the asv issue)."""
