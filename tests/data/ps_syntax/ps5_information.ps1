Write-Information -MessageData 'starting' -InformationAction Continue
$tmp = New-TemporaryFile
Set-Content -Path $tmp -Value 'x' -NoNewline
Compress-Archive -Path 'C:\Temp\logs' -DestinationPath 'C:\Temp\logs.zip'
$items = Get-ChildItem -Path 'C:\Temp' -Depth 2
