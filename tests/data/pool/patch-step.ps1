# Lab stand-in for a patch: the lab echoes Write-Output lines and fails on throw.
Write-Output 'cumulative update applied'
