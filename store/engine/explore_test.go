package engine

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

func TestExplore(t *testing.T) {
	dir := t.TempDir()
	s, err := openSession(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	s2, err := openSession(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.close()
	run := func(s *session, q, f string) {
		t0 := time.Now()
		r, err := s.query(q, f, nil)
		defer r.free()
		if err != nil {
			fmt.Fprintf(os.Stderr, "Q %q -> ERR %v (%v)\n", q, err, time.Since(t0))
			return
		}
		b := r.bytes()
		if len(b) > 300 {
			b = b[:300]
		}
		fmt.Fprintf(os.Stderr, "Q %q -> %q (%v)\n", q, b, time.Since(t0))
	}
	run(s, "SET max_threads = '1', insert_deduplication_token = 'abc'", "TSV")
	run(s, "SELECT getSetting('max_threads'), getSetting('insert_deduplication_token')", "TSV")
	run(s, "SELECT 1 FORMAT JSONEachRow", "Native")
	run(s, "SELECT 1", "TSV")
	run(s, "SELECT 1", "TSV")
	run(s, "SELECT 1", "TSV")
	// concurrency: long query on s, short on s2
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); run(s, "SELECT count() FROM numbers(600000000) WHERE sipHash64(number) % 7 = 1", "TSV") }()
	time.Sleep(300 * time.Millisecond)
	run(s2, "SELECT query_id, query FROM system.processes", "TSV")
	run(s2, "KILL QUERY WHERE query LIKE '%sipHash64%' AND query NOT LIKE '%processes%' ASYNC", "TSV")
	wg.Wait()
}
