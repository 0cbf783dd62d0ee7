"""Renderers: each turns a result into a string (or a picture) for the command line to place.

The document envelope, encoding and the one loader (``envelope``), and one module per output.
May import: audits and everything below; never the command line.
"""
