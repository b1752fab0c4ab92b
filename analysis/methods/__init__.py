"""Methods: pure computation, arrays in and arrays out (no cache, no files)."""
