"""PowerShell text helpers: quote values into scripts, and check scripts without running PowerShell."""
