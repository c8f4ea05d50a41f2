package main

import (
	"log"
	"os"

	"github.com/aws/aws-sdk-go/aws/credentials"
	"golang.org/x/crypto/ssh"
)

func main() {
	creds := credentials.NewEnvCredentials()
	if _, err := creds.Get(); err != nil {
		log.Fatal(err)
	}
	key, err := os.ReadFile(os.Getenv("SFTP_KEY_PATH"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := ssh.ParsePrivateKey(key); err != nil {
		log.Fatal(err)
	}
}
