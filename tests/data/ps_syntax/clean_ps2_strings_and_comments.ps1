# Nothing in strings or comments counts: -in, ??, ::new(, .ForEach(, [pscustomobject], $PSItem, a && b
<#
    Block comment: class Foo {} ; enum Bar {} ; $x ? 1 : 2 ; ${a}?.b
#>
$a = 'It''s -in and -notin, ?? and ::new( and .Where{ }'
$b = "Double ""quoted"" with [ordered] and ConvertTo-Json"
$c = @"
Here-string with `$using:x and ForEach-Object Name
"@
$d = @'
Verbatim here-string with $PSItem and a && b || c
'@
$e = "{0} and {1}" -f $a, $b
$f = $a.Replace('-in', '-contains')
Write-Output ($e + $f + $c + $d)
$logs = Get-ChildItem -Path 'C:\Temp' -Filter RTC??.log
Get-ChildItem C:\Temp\log??.txt | Where-Object { $_.Length -gt 0 }
