"""Tests for the typed result parsers and the LcsCmd log parser."""
