// Package envflag gives every flag of a flag.FlagSet an environment twin
// that goes through the flag's own parser: PREFIX + the flag's name in
// upper case with '_' for '-' (--ingest-max-body with prefix FLEETSCOPE_ is
// FLEETSCOPE_INGEST_MAX_BODY). A twin that does not parse stops start-up
// with an error naming the variable, exactly as a bad flag would — never a
// silent default or a truncated number (FLEETSCOPE_INGEST_MAX_BODY=8MiB is
// 8 MiB, and "8 bytes" is an error). A flag on the command line wins over
// its twin.
//
// It also has the flag types fleetscope's configuration needs beyond the
// standard ones: Bytes, a size with units.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// Name returns the environment twin of flag name under prefix.
func Name(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse sets every flag of fs that has an environment twin set, then parses
// args (so the command line wins). Call it after defining the flags. The
// flag's usage should mention its twin; Usage lists them.
func Parse(fs *flag.FlagSet, prefix string, args []string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := Name(prefix, f.Name)
		v, ok := os.LookupEnv(env)
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return fs.Parse(args)
}

// Bytes is a size in bytes that parses with units: 8MiB, 512KiB, 2GiB,
// 1.5GiB, 10MB, or a plain count (8388608). A value with an unknown unit,
// a fraction of a byte or one beyond int64 is an error.
type Bytes int64

// units by suffix, longest first so that "MiB" is not read as "B".
var units = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseBytes reads a size (see Bytes).
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := 1.0
	for _, u := range units {
		if n, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	if t == "" {
		return 0, fmt.Errorf("size %q: no number", s)
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil && mult == 1 {
		return n, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", s)
	}
	v := f * mult
	if v != math.Trunc(v) {
		return 0, fmt.Errorf("size %q: not a whole number of bytes", s)
	}
	if v > math.MaxInt64 || v < math.MinInt64 {
		return 0, fmt.Errorf("size %q: out of range", s)
	}
	return int64(v), nil
}

// String implements flag.Value, in the largest binary unit that divides it.
func (b *Bytes) String() string {
	v := int64(*b)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v != 0 && v%u.mult == 0 {
			return strconv.FormatInt(v/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(v, 10)
}

// Set implements flag.Value.
func (b *Bytes) Set(s string) error {
	v, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b = Bytes(v)
	return nil
}

// BytesVar defines a size flag.
func BytesVar(fs *flag.FlagSet, p *int64, name string, def int64, usage string) {
	*p = def
	fs.Var((*Bytes)(p), name, usage)
}
