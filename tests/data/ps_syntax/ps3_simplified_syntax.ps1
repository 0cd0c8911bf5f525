$running = Get-Service | Where-Object Status -eq 'Running'
$names = Get-Service | ForEach-Object Name
$all = Get-Service | Where-Object { $_.Status -eq 'Running' } | ForEach-Object { $_.Name }
$text = Get-Content -Path 'C:\Temp\log.txt' -Raw
$last = Get-Content -Path 'C:\Temp\log.txt' -Tail 10
Remove-Item -Path 'C:\Temp\old.txt' -ErrorAction Ignore
Remove-Item -Path 'C:\Temp\old2.txt' -ErrorAction SilentlyContinue
$files = Get-ChildItem -Path 'C:\Temp' -File
$o = New-Object PSObject
$o | Add-Member -NotePropertyName 'Host' -NotePropertyValue 'fe01'
