"""Loopback WinRM/PSRP lab: simulated OCS, Lync and Skype for Business servers for tests and benchmarks."""
