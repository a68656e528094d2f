"""Pure values and rules: nothing in this package performs I/O."""
