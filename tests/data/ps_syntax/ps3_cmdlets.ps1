$state = Get-CsWindowsService | Select-Object -Property @('Name', 'Status')
$json = $state | ConvertTo-Json
$back = $json | ConvertFrom-Json
Invoke-RestMethod -Uri 'https://monitor.example.com/api' -Method Post -Body $json
Invoke-WebRequest -Uri 'https://example.com' -UseBasicParsing | Out-Null
$os = Get-CimInstance -ClassName Win32_OperatingSystem
Register-ScheduledJob -Name 'drain-check' -ScriptBlock { Get-CsWindowsService }
Microsoft.PowerShell.Utility\ConvertTo-Json -InputObject $os
