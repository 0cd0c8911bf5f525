param([string]$ComputerName = '.')
trap {
    Write-Warning ("Failed: {0}" -f $_.Exception.Message)
    continue
}
$version = Get-WmiObject -Namespace 'root\cimv2' -Class MSFT_SIPVersion -ComputerName $ComputerName -ErrorAction Stop
switch ($version.MajorVersion) {
    3 { $product = 'ocs2007' }
    4 { $product = 'ocs2007r2' }
    default { $product = 'unknown' }
}
$services = @(Get-WmiObject -Class Win32_Service -ComputerName $ComputerName -Filter "Name LIKE 'RTC%'")
foreach ($service in $services) {
    $line = '{0,-20} {1}' -f $service.Name, $service.State
    Write-Output $line
}
$summary = @'
Product check complete.
It's safe to continue.
'@
Write-Output $summary
