package web

import "testing"

func TestSecurityHeaderBytes(t *testing.T) {
	if len(securityHeaderBytes) != len(SecurityHeaders) {
		t.Fatalf("%d canonical headers, want %d", len(securityHeaderBytes), len(SecurityHeaders))
	}
	for i, sh := range SecurityHeaders {
		if k, v := string(securityHeaderBytes[i][0]), string(securityHeaderBytes[i][1]); k != sh.Key || v != sh.Value {
			t.Errorf("header %d is %q: %q, want %q: %q", i, k, v, sh.Key, sh.Value)
		}
	}
}
