[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)]
    [string]$ComputerName,
    [Parameter(Mandatory=$true, Position=1)]
    [string]$Reason
)
LCSCmd.exe --% /Server:%COMPUTERNAME% /Action:CheckLCServerState /Role:SE
