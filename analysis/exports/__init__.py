"""Exports: atomic export folders and the writers of each analysis's files."""
