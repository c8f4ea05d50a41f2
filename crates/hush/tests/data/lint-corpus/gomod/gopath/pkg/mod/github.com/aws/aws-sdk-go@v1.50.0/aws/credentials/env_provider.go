package credentials

import "os"

// EnvProvider retrieves credentials from the environment variables of the running process.
type EnvProvider struct{ retrieved bool }

// NewEnvCredentials returns a pointer to a new Credentials object wrapping the environment
// variable provider.
func NewEnvCredentials() *Credentials {
	return NewCredentials(&EnvProvider{})
}

// Retrieve retrieves the keys from the environment.
func (e *EnvProvider) Retrieve() (Value, error) {
	e.retrieved = true
	return Value{
		AccessKeyID:     os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    os.Getenv("AWS_SESSION_TOKEN"),
		ProviderName:    "EnvProvider",
	}, nil
}

// IsExpired returns if the credentials have been retrieved.
func (e *EnvProvider) IsExpired() bool { return !e.retrieved }
