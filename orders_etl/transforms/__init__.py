"""Pure DataFrame -> DataFrame steps: no reads, no writes, no config, no clock."""
