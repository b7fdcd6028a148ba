module btl

go 1.26.0

require (
	golang.org/x/sys v0.50.0
	howett.net/plist v1.0.1
)
