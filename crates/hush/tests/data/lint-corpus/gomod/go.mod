module example.com/sftp-sync

go 1.22

require (
	github.com/aws/aws-sdk-go v1.50.0
	golang.org/x/crypto v0.21.0
)
