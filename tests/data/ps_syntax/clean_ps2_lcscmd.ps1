# Deactivate the Front End role on an OCS 2007 R2 Standard Edition server.
[CmdletBinding(SupportsShouldProcess=$true)]
param(
    [Parameter(Mandatory=$true)]
    [string]$ServerFqdn,
    [string]$LogPath = 'C:\Temp\lcscmd-deactivate.xml'
)
$lcscmd = Join-Path ${env:CommonProgramFiles} 'Microsoft Office Communications Server 2007\LCSCmd.exe'
if (-not (Test-Path -LiteralPath $lcscmd)) {
    throw "LCSCmd.exe not found at $lcscmd"
}
$report = New-Object PSObject -Property @{
    Server   = $ServerFqdn
    ExitCode = $null
    Output   = ''
}
if ($PSCmdlet.ShouldProcess($ServerFqdn, 'Deactivate Front End')) {
    $output = & $lcscmd /Server:$ServerFqdn /Role:SE /Action:Deactivate /L:$LogPath 2>&1 | Out-String
    $report.ExitCode = $LASTEXITCODE
    $report.Output = $output
}
$report
