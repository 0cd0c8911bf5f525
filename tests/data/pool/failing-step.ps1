Write-Output 'starting the update'
throw 'setup.exe exited with 1603'
