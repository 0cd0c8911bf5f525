"""Tests for connection settings, their sources (flags, environment, config file) and hosts files."""
