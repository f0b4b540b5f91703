"""Data producers of R1's later stages: rejection sampling with the paper's filters (`rejection`), its
readability check (`readability_issues`), the cold-start data set (`cold_start`)."""

from r1kit.sampling.readability import REASONS, readability_issues

__all__ = ["REASONS", "readability_issues"]
