$timeout = $Timeout ?? 600
$cache ??= @{}
$status = ${service}?.Status
$first = ${list}?[0]
$err = Get-Error
