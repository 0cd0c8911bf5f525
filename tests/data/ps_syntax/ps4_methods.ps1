$services = @(Get-Service -Name 'RTC*')
$running = $services.Where({ $_.Status -eq 'Running' })
$names = $services.ForEach({ $_.Name })
$first = $services.Where{ $_.Name -like 'RTCSRV' }
Get-Service -PipelineVariable svc | ForEach-Object { $svc.Name }
$hash = Get-FileHash -Path 'C:\Temp\patch.msp' -Algorithm SHA256
