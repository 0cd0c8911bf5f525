Stop-CsWindowsService -Name RTCSRV -Graceful && Write-Output 'stopped'
Start-CsWindowsService -Name RTCSRV || Write-Warning 'start failed'
$label = $graceful ? 'graceful' : 'forced'
1..3 | ForEach-Object -Parallel { Get-Service -Name "RTC$_" }
