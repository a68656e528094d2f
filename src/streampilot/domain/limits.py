"""Bounds every number a user gives stays within (a larger one is a field error, never a 500)."""

YEAR_S = 365 * 86400.0  # the longest duration anywhere: Flink keeps durations in milliseconds
MAX_INT = 2**31 - 1  # counts and ids: the databases' 32-bit integer columns
