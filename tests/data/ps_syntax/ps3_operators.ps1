$names = @('RTCSRV', 'RTCMEDSRV')
if ('RTCSRV' -in $names) {
    Write-Output 'front end'
}
if ('FTA' -notin $names) { Write-Output 'no FTA' }
$mask = 1 -shl 4
$half = 256 -shr 1
$ok = $names -contains 'RTCSRV'
