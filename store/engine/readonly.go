package engine

import "strings"

// readOnlyKinds are the statements a read-only (GET) request may run: the
// first keyword, after comments and opening parentheses.
var readOnlyKinds = map[string]bool{
	"SELECT": true, "WITH": true, "SHOW": true, "DESC": true, "DESCRIBE": true,
	"EXISTS": true, "EXPLAIN": true,
}

// errReadOnly builds the READONLY exception a refused GET answers with.
func errReadOnly(why string) *Error {
	return &Error{Code: 164, Name: "READONLY", Message: "Code: 164. DB::Exception: Cannot execute query in readonly mode: " +
		why + "; a GET request runs only SELECT, SHOW, DESCRIBE, EXISTS and EXPLAIN, send other statements with POST. (READONLY)"}
}

// checkReadOnly refuses what a GET request must not run. The engine runs a
// GET's statement with readonly=2 as well, but chDB lets that be undone
// from inside the statement, so the text is checked first:
//   - the first keyword must be one of readOnlyKinds (no SET or USE either:
//     they would change the pooled session for later requests);
//   - one statement only: chDB runs `SELECT 1; DROP TABLE t` as two;
//   - no `= DEFAULT`: `SETTINGS readonly = DEFAULT` passes the engine's
//     readonly check and lifts it;
//   - no INTO OUTFILE: the engine writes the file whatever readonly says;
//   - no `$`: heredoc strings ($$…$$) are not tokenized here, so text that
//     hides in one could be misread.
//
// The tokenizer follows ClickHouse's lexer where it matters (nested /* */
// comments, `--` and `# ` comments, backslash escapes and doubled quotes in
// quoted strings and identifiers); where it is unsure it sees more code,
// not less, so it errs towards refusing.
func checkReadOnly(sql string) *Error {
	var (
		first    = true
		prevEq   bool
		afterSep bool
	)
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
			continue
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-',
			c == '#' && i+1 < len(sql) && (sql[i+1] == ' ' || sql[i+1] == '!'):
			if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(sql)
			}
			continue
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			depth := 0
			for i < len(sql) {
				if strings.HasPrefix(sql[i:], "/*") {
					depth++
					i += 2
				} else if strings.HasPrefix(sql[i:], "*/") {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
			if depth != 0 {
				return errReadOnly("unterminated comment")
			}
			continue
		}
		// Everything from here on is a token.
		if afterSep {
			return errReadOnly("several statements in one request")
		}
		switch {
		case c == ';':
			afterSep = true
			i++
			// Trailing semicolons are harmless; anything after one is a
			// second statement.
			for i < len(sql) && sql[i] == ';' {
				i++
			}
			continue
		case c == '$':
			return errReadOnly("heredoc strings ($…$) are not accepted")
		case c == '\'' || c == '"' || c == '`':
			j, ok := skipQuoted(sql, i)
			if !ok {
				return errReadOnly("unterminated quoted text")
			}
			i = j
			if first {
				return errReadOnly("statement starts with a quoted name")
			}
			prevEq = false
			continue
		case isWordByte(c):
			j := i
			for j < len(sql) && isWordByte(sql[j]) {
				j++
			}
			word := strings.ToUpper(sql[i:j])
			i = j
			if first {
				if !readOnlyKinds[word] {
					return errReadOnly("statement " + word + " writes")
				}
				first = false
			}
			switch {
			case word == "DEFAULT" && prevEq:
				return errReadOnly("settings cannot be reset to DEFAULT")
			case word == "OUTFILE":
				return errReadOnly("INTO OUTFILE writes a file")
			}
			prevEq = false
			continue
		case c == '(' && first:
			i++
			continue
		}
		if first {
			return errReadOnly("statement does not start with a keyword")
		}
		prevEq = c == '='
		i++
	}
	if first {
		return errReadOnly("empty statement")
	}
	return nil
}

// skipQuoted returns the index after the quoted string or identifier that
// starts at sql[i], and false if it is not terminated. A backslash escapes
// the next byte, and a doubled quote stands for one.
func skipQuoted(sql string, i int) (int, bool) {
	q := sql[i]
	for i++; i < len(sql); i++ {
		switch sql[i] {
		case '\\':
			i++
		case q:
			if i+1 < len(sql) && sql[i+1] == q {
				i++
				continue
			}
			return i + 1, true
		}
	}
	return len(sql), false
}

// isWordByte reports bytes of bare words and numbers. Bytes of UTF-8
// sequences count, as ClickHouse allows them in bare identifiers.
func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}
