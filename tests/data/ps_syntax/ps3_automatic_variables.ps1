$here = Split-Path -Parent $MyInvocation.MyCommand.Definition
$config = Join-Path $PSScriptRoot 'config.xml'
Get-Service | Where-Object { $PSItem.Status -eq 'Running' } | ForEach-Object { $_.Name }
$name = 'RTCSRV'
Invoke-Command -ComputerName 'fe01' -ScriptBlock { Get-Service -Name $using:name }
Write-Output $PSCommandPath
