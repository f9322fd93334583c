package api

import (
	"crypto/rand"
)

// newCode returns a one-time code (verification, password reset): 10
// characters of an alphabet without look-alikes, ~50 bits — not guessable
// within its lifetime, all the less so with the tries limited.
func newCode() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var b [10]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}
