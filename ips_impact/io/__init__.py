"""Input: readers, column schemas, column-name mapping, period parsing."""

from ips_impact.io.mapping import ColumnMap
from ips_impact.io.periods import detect_frequency, parse_periods
from ips_impact.io.readers import find_table_files, read_table

__all__ = ["ColumnMap", "detect_frequency", "parse_periods", "find_table_files", "read_table"]
