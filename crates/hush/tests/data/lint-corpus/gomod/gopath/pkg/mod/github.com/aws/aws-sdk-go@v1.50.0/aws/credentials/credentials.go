// Package credentials provides credential retrieval and management.
package credentials

import "sync"

// A Value is the AWS credentials value for individual credential fields.
type Value struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	ProviderName    string
}

// A Provider is the interface for any component which will provide credentials Value.
type Provider interface {
	Retrieve() (Value, error)
	IsExpired() bool
}

// Credentials provides concurrency safe retrieval of AWS credentials Value.
type Credentials struct {
	m        sync.RWMutex
	creds    Value
	provider Provider
}

// NewCredentials returns a pointer to a new Credentials with the provider set.
func NewCredentials(provider Provider) *Credentials {
	return &Credentials{provider: provider}
}
