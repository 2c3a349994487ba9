"""The numerics, written once against the array namespace. Imports no array library."""
