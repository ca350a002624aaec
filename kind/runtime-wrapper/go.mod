// The OCI runtime wrapper kind/up registers with dockerd where the capability
// bounding set lacks a capability (see main.go). Standard library only.
module local/sluice-runtime-wrapper

go 1.24.0
