$row = [pscustomobject]@{ Name = 'RTCSRV' }
$json = $row | ConvertTo-Json
$names = @('a').ForEach({ $_ })
class Holder { [string]$Value }
$h = [Holder]::new()
$v = $maybe ?? 'default'
Get-Service && Write-Output 'done'
