$service = Get-Service -Name RTCSRV
$row = [pscustomobject]@{
    Name   = $service.Name
    Status = $service.Status
}
$order = [ordered]@{ First = 1; Second = 2 }
$typed = [PSCustomObject] @{ Name = 'x' }
$list = New-Object System.Collections.ArrayList
[void]$list.Add($row)
