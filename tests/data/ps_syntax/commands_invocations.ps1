Import-Module Lync
$lcscmd = 'C:\Program Files\Common Files\Microsoft Office Communications Server 2007\LCSCmd.exe'
& $lcscmd /Server:fe01.contoso.com /Role:SE /Action:Deactivate /Force
& 'C:\Program Files\Common Files\Microsoft Office Communications Server 2007\LCSCmd.exe' /Archive /Action:Deactivate
LCSCmd.exe /Server /Action:CheckLCServerState /Role:SE
. .\helpers.ps1
& { Get-Date }
$params = @{ Name = 'RTCSRV'; ComputerName = 'fe01' }
Get-CsWindowsService @params
Get-CsWindowsService -ComputerName 'fe01' | Stop-CsWindowsService -Graceful:$true -NoWait
Stop-CsWindowsService –Name RTCMEDSRV –Graceful
Get-Service -Name 'RTCSRV' -ErrorAction Stop 2>&1 | Out-Null
