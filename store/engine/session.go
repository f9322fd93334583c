package engine

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// identRe is what the bridge accepts as a setting, table, database or format
// name. Names reach SQL text (SET, CREATE TEMPORARY TABLE), so nothing else
// passes.
var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

func badRequest(format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Code: 36, Name: "BAD_ARGUMENTS", Message: "Code: 36. DB::Exception: " + msg + ". (BAD_ARGUMENTS)"}
}

// unknownValue marks a setting whose value is unknown after a failed SET, so
// that the next statement sets or resets it whatever it wants.
const unknownValue = "\x00unknown"

// readonlySetting is the setting a GET request's statement runs under (2:
// read, and change other settings).
const readonlySetting = "readonly"

// prepare brings the session's settings and current database to what st
// asks for, with at most one SET and one USE — plus, when readonly is
// involved, one SET to lift it before and one to apply it after: it decides
// whether the other settings may change, and chDB lets a statement run
// under readonly reset it (`SETTINGS readonly = DEFAULT`), so its cached
// value is never trusted.
func (s *session) prepare(st *statement) error {
	if _, ok := s.settings[readonlySetting]; ok {
		res, err := s.query("SET "+readonlySetting+" = DEFAULT", "TSV", nil)
		res.free()
		if err != nil {
			return err
		}
		delete(s.settings, readonlySetting)
	}
	var assigns []string
	for k, v := range st.settings {
		if !identRe.MatchString(k) {
			return badRequest("invalid setting name %q", k)
		}
		if k == readonlySetting {
			continue
		}
		if cur, ok := s.settings[k]; !ok || cur != v {
			assigns = append(assigns, k+" = "+quoteString(v))
		}
	}
	for k := range s.settings {
		if _, ok := st.settings[k]; !ok {
			assigns = append(assigns, k+" = DEFAULT")
		}
	}
	if len(assigns) > 0 {
		sort.Strings(assigns) // deterministic text: easier to read in logs
		res, err := s.query("SET "+strings.Join(assigns, ", "), "TSV", nil)
		res.free()
		if err != nil {
			if s.settings == nil {
				s.settings = make(map[string]string)
			}
			for k := range st.settings {
				if k != readonlySetting {
					s.settings[k] = unknownValue
				}
			}
			return err
		}
		s.settings = make(map[string]string, len(st.settings))
		for k, v := range st.settings {
			if k != readonlySetting {
				s.settings[k] = v
			}
		}
	}
	if st.database != s.database {
		db := st.database
		if db == "" {
			db = "default"
		}
		if !identRe.MatchString(db) {
			return badRequest("invalid database name %q", db)
		}
		res, err := s.query("USE "+quoteIdent(db), "TSV", nil)
		res.free()
		if err != nil {
			return err
		}
		s.database = st.database
	}
	if v, ok := st.settings[readonlySetting]; ok {
		if s.settings == nil {
			s.settings = make(map[string]string)
		}
		// Lifted again before the next statement, whatever this one did.
		s.settings[readonlySetting] = unknownValue
		res, err := s.query("SET "+readonlySetting+" = "+quoteString(v), "TSV", nil)
		res.free()
		if err != nil {
			return err
		}
	}
	return nil
}

// loadExternal creates the temporary table of an external table and fills
// it. The returned func drops it again; it is non-nil once the table exists.
func (s *session) loadExternal(x externalTable) (func(), error) {
	if !identRe.MatchString(x.name) || !identRe.MatchString(x.format) {
		return nil, badRequest("invalid external table %q or format %q", x.name, x.format)
	}
	if strings.ContainsAny(x.structure, ";`") {
		return nil, badRequest("invalid structure for external table %q", x.name)
	}
	name := quoteIdent(x.name)
	res, err := s.query("CREATE TEMPORARY TABLE "+name+" ("+x.structure+") ENGINE = Memory", "TSV", nil)
	res.free()
	if err != nil {
		return nil, err
	}
	drop := func() {
		r, _ := s.query("DROP TEMPORARY TABLE IF EXISTS "+name, "TSV", nil)
		r.free()
	}
	f, err := memfd(x.name)
	if err != nil {
		return drop, err
	}
	defer f.Close()
	if _, err := x.data.writeTo(f); err != nil {
		return drop, fmt.Errorf("engine: read external table %s: %w", x.name, err)
	}
	res, err = s.query("INSERT INTO "+name+" FROM INFILE "+quoteString(fdPath(f))+" FORMAT "+x.format, "TSV", nil)
	res.free()
	return drop, err
}

// memfd is an anonymous in-memory file: the engine reads INSERT data from it
// by path, and nothing touches the disk.
func memfd(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate("fleetscope-"+name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("engine: memfd: %w", err)
	}
	return os.NewFile(uintptr(fd), "memfd:"+name), nil
}

func fdPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

var insertFormatRe = regexp.MustCompile(`(?is)^(\s*INSERT\s+INTO\s+.*?)\s+FORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$`)

// insertFromFile turns `INSERT INTO t [(cols)] FORMAT F` into the same
// statement reading its data from path.
func insertFromFile(sql, path string) (string, error) {
	m := insertFormatRe.FindStringSubmatch(sql)
	if m == nil {
		return "", badRequest("request data is accepted only for INSERT INTO t [(columns)] FORMAT <format>")
	}
	return m[1] + " FROM INFILE " + quoteString(path) + " FORMAT " + m[2], nil
}

// quoteString renders v as a ClickHouse string literal.
func quoteString(v string) string {
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\'', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case 0:
			b.WriteString(`\0`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

func quoteIdent(v string) string {
	return "`" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "`", "\\`") + "`"
}
