package engine

import (
	"regexp"
	"strconv"
)

// Error is an engine exception: the code, symbolic name and text ClickHouse
// reports (`Code: 60. DB::Exception: … (UNKNOWN_TABLE) (version …)`).
type Error struct {
	Code    int
	Name    string
	Message string
}

func (e *Error) Error() string { return e.Message }

var (
	codeRe = regexp.MustCompile(`Code:\s*(\d+)\.`)
	nameRe = regexp.MustCompile(`\(([A-Z][A-Z0-9_]+)\)`)
)

// parseEngineError turns the engine's error text into an *Error. Text without
// a code becomes code 1001 (STD_EXCEPTION), as ClickHouse reports errors that
// escaped its own exception types.
func parseEngineError(msg string) *Error {
	e := &Error{Code: 1001, Name: "STD_EXCEPTION", Message: msg}
	if m := codeRe.FindStringSubmatch(msg); m != nil {
		e.Code, _ = strconv.Atoi(m[1])
		e.Name = ""
	}
	if all := nameRe.FindAllStringSubmatch(msg, -1); len(all) > 0 {
		e.Name = all[len(all)-1][1]
	}
	return e
}
