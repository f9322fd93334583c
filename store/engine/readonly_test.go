package engine

import "testing"

func TestCheckReadOnly(t *testing.T) {
	f := func(sql string, allowed bool) {
		t.Helper()
		err := checkReadOnly(sql)
		if (err == nil) != allowed {
			t.Fatalf("checkReadOnly(%q) = %v; want allowed %v", sql, err, allowed)
		}
		if err != nil && (err.Code != 164 || err.Name != "READONLY") {
			t.Fatalf("checkReadOnly(%q): %+v; want a READONLY error", sql, err)
		}
	}
	// Reads.
	f("SELECT 1", true)
	f("  select 1;", true)
	f("SELECT 1;;  \n", true)
	f("(SELECT 1) UNION ALL (SELECT 2)", true)
	f("WITH 1 AS x SELECT x", true)
	f("SHOW TABLES FROM default", true)
	f("DESCRIBE TABLE t", true)
	f("desc t", true)
	f("EXISTS TABLE t", true)
	f("EXPLAIN SELECT 1", true)
	f("-- why\nSELECT 1", true)
	f("# why\nSELECT 1", true)
	f("/* a /* nested */ comment */ SELECT 1", true)
	f("SELECT 'a;b', \"c;d\", `e;f`", true)
	f(`SELECT 'it''s', 'back\'slash', 'DROP TABLE t; --'`, true)
	f("SELECT * FROM default.t WHERE x = 1", true)
	f("SELECT name, value FROM system.settings WHERE name = 'readonly'", true)
	f("SELECT 1 SETTINGS max_threads = 1", true)
	f("SELECT 'INTO OUTFILE'", true)
	f("SELECT number FROM numbers(10) FORMAT JSON", true)
	f("SELECT ünïcode FROM t", true)
	// Writes, and ways around the engine's readonly.
	f("", false)
	f("  -- only a comment", false)
	f("DROP TABLE t", false)
	f("drop table t", false)
	f("INSERT INTO t VALUES (1)", false)
	f("CREATE TABLE t (x UInt8) ENGINE = Memory", false)
	f("ALTER TABLE t DELETE WHERE 1", false)
	f("TRUNCATE t", false)
	f("SYSTEM DROP DNS CACHE", false)
	f("KILL QUERY WHERE 1", false)
	f("SET readonly = 0", false)
	f("USE other", false)
	f("OPTIMIZE TABLE t FINAL", false)
	f("SELECT 1; DROP TABLE t", false)
	f("SELECT 1 ;DROP TABLE t", false)
	f("SELECT 1; -- \n DROP TABLE t", false)
	f("SELECT 1 SETTINGS readonly = DEFAULT", false)
	f("SELECT 1 SETTINGS readonly = /* */ default", false)
	f("WITH 1 AS x INSERT INTO t SETTINGS readonly=DEFAULT SELECT x", false)
	f("SELECT 1 INTO OUTFILE '/tmp/x'", false)
	f("SELECT 1 INTO/**/outfile '/tmp/x'", false)
	f("/* /* */ SELECT */ DROP TABLE t", false)
	f("/* unterminated SELECT", false)
	f("SELECT 'unterminated", false)
	f("SELECT $$a$$", false)
	f("SELECT $x$;DROP TABLE t$x$", false)
	f("'SELECT' 1", false)
	f("`SELECT` 1", false)
	f("#SELECT\nDROP TABLE t", false)
	f("; SELECT 1", false)
}
