using namespace System.Collections.Generic
enum DrainState {
    Running
    Draining
    Stopped
}
class ServiceState {
    [string]$Name
    [DrainState]$State
    ServiceState([string]$name) {
        $this.Name = $name
    }
}
$list = [List[string]]::new()
$state = [ServiceState]::new('RTCSRV')
