package envflag

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestParseBytes(t *testing.T) {
	f := func(s string, want int64, wantErr bool) {
		t.Helper()
		got, err := ParseBytes(s)
		if (err != nil) != wantErr || !wantErr && got != want {
			t.Fatalf("ParseBytes(%q) = %d, %v; want %d, error %v", s, got, err, want, wantErr)
		}
	}
	f("8MiB", 8<<20, false)
	f("8 MiB", 8<<20, false)
	f("2GiB", 2<<30, false)
	f("1.5KiB", 1536, false)
	f("10MB", 10_000_000, false)
	f("8388608", 8388608, false)
	f("512B", 512, false)
	f("abc", 0, true)
	f("8 bytes", 0, true)
	f("1e6", 1_000_000, false) // a float without unit is still a whole count
	f("1.5", 0, true)
	f("", 0, true)
	f("MiB", 0, true)
	f("1e30GiB", 0, true)
	f("NaN", 0, true)
}

func TestBytesString(t *testing.T) {
	for v, want := range map[int64]string{8 << 20: "8MiB", 2 << 30: "2GiB", 1000: "1000", 0: "0", 1536: "1536"} {
		b := Bytes(v)
		if got := b.String(); got != want {
			t.Fatalf("%d: %q, want %q", v, got, want)
		}
	}
}

func TestParseUsesTheFlagsParser(t *testing.T) {
	newSet := func() (*flag.FlagSet, *int64, *time.Duration, *bool, *int) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var size int64
		BytesVar(fs, &size, "max-body", 1<<20, "")
		d := fs.Duration("interval", time.Second, "")
		b := fs.Bool("demo", false, "")
		n := fs.Int("count", 5, "")
		return fs, &size, d, b, n
	}
	fs, size, d, b, n := newSet()
	t.Setenv("X_MAX_BODY", "8MiB")
	t.Setenv("X_INTERVAL", "3s")
	t.Setenv("X_DEMO", "true")
	t.Setenv("X_COUNT", "7")
	if err := Parse(fs, "X_", []string{"--count", "9"}); err != nil {
		t.Fatal(err)
	}
	if *size != 8<<20 || *d != 3*time.Second || !*b || *n != 9 {
		t.Fatalf("got %d %s %v %d", *size, *d, *b, *n)
	}
	for env, bad := range map[string]string{"X_MAX_BODY": "8 bytes", "X_COUNT": "1e6", "X_DEMO": "maybe", "X_INTERVAL": "3"} {
		fs, _, _, _, _ := newSet()
		t.Setenv(env, bad)
		err := Parse(fs, "X_", nil)
		if err == nil || !strings.Contains(err.Error(), env) {
			t.Fatalf("%s=%s: %v, want an error naming the variable", env, bad, err)
		}
		t.Setenv(env, map[string]string{"X_MAX_BODY": "1", "X_COUNT": "1", "X_DEMO": "false", "X_INTERVAL": "1s"}[env])
	}
}
