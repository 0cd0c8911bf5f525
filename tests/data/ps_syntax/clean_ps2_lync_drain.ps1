# Reason: patch window
[CmdletBinding(SupportsShouldProcess=$true)]
param(
    [Parameter(Mandatory=$true)]
    [string]$ComputerName,
    [string]$Reason = 'It''s a test',
    [int]$TimeoutSeconds = 600
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2.0
Import-Module Lync
$result = New-Object PSObject -Property @{
    Name = $ComputerName
    Status = 'Unknown'
}
try {
    $svc = Get-CsWindowsService -Name 'RTCSRV' -ComputerName $ComputerName
    if ($svc.Status -eq 'Running' -and $PSCmdlet.ShouldProcess($ComputerName, 'Stop RTCSRV')) {
        Stop-CsWindowsService -Name 'RTCSRV' -ComputerName $ComputerName -Graceful -NoWait
    }
    $deadline = (Get-Date).AddSeconds($TimeoutSeconds)
    while ((Get-Date) -lt $deadline) {
        Start-Sleep -Seconds 5
    }
    Get-Service | Where-Object { $_.Name -like 'RTC*' } | ForEach-Object { $_.Name }
    $names = @('a', 'b') | Select-Object -First 1
    foreach ($n in $names) { Write-Verbose ("name {0}" -f $n) }
}
catch [System.Exception] {
    Write-Error $_.Exception.Message
    exit 1
}
finally {
    $result.Status = 'Done'
}
$out = "Status: $($result.Status)"
Write-Output $result
