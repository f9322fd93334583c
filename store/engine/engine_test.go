package engine_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/internal/storetest"
)

// After libchdb has connected, Go's own signal handling must still work: a
// nil dereference is a recoverable panic (SIGSEGV), goroutine stacks grow,
// and a tight loop is preempted (SIGURG).
func TestGoSignalHandlingSurvivesEngine(t *testing.T) {
	s := storetest.Open(t)
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Run("nil pointer dereference is a recoverable panic", func(t *testing.T) {
		recovered := func() (r any) {
			defer func() { r = recover() }()
			var p *struct{ x int }
			return p.x
		}()
		if err, ok := recovered.(runtime.Error); !ok || err == nil {
			t.Fatalf("recovered %v, want a runtime error", recovered)
		}
	})
	t.Run("deep recursion grows the stack", func(t *testing.T) {
		var depth func(n int) int
		depth = func(n int) int {
			var pad [256]byte
			if n == 0 {
				return int(pad[0])
			}
			return depth(n-1) + int(pad[n%256])
		}
		if depth(100_000) != 0 {
			t.Fatal("unexpected")
		}
	})
	t.Run("tight loop is preempted", func(t *testing.T) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		var stop atomic.Bool
		done := make(chan struct{})
		go func() {
			for !stop.Load() {
			}
			close(done)
		}()
		time.Sleep(20 * time.Millisecond) // only runs again if the loop is preempted
		stop.Store(true)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("spinning goroutine never yielded")
		}
	})
}

// Many goroutines query while the garbage collector runs constantly: every
// answer must be right and nothing may crash.
func TestStressQueriesUnderGC(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	stop := make(chan struct{})
	var gcWG sync.WaitGroup
	gcWG.Add(1)
	go func() {
		defer gcWG.Done()
		var keep [][]byte
		for {
			select {
			case <-stop:
				return
			default:
			}
			keep = append(keep, make([]byte, 64<<10))
			if len(keep) > 256 {
				keep = keep[:0]
				runtime.GC()
			}
		}
	}()
	const workers = 16
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	deadline := time.Now().Add(3 * time.Second)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				n := uint64(w*1000 + i)
				var got uint64
				var str string
				if err := s.QueryRow(ctx, fmt.Sprintf("SELECT sum(number), toString(%d) FROM numbers(%d)", n, n+1)).Scan(&got, &str); err != nil {
					errs <- err
					return
				}
				if got != n*(n+1)/2 || str != fmt.Sprint(n) {
					errs <- fmt.Errorf("worker %d: sum %d str %s for n=%d", w, got, str, n)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	gcWG.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Data written before the engine closes is there when it opens again on the
// same directory, as after a restart.
func TestDataSurvivesCloseAndReopen(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	db := s.Database()
	if err := s.Exec(ctx, "CREATE TABLE keep (k UInt32, v String) ENGINE = MergeTree ORDER BY k"); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(ctx, "INSERT INTO keep SELECT number, toString(number * 3) FROM numbers(1000)"); err != nil {
		t.Fatal(err)
	}
	storetest.Reopen(t)
	s2 := storetest.OpenDatabase(t, db)
	var n, sum uint64
	if err := s2.QueryRow(ctx, "SELECT count(), sum(toUInt64(v)) FROM keep").Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 1000 || sum != 3*999*1000/2 {
		t.Fatalf("after reopen: count %d sum %d", n, sum)
	}
}

// Sessions are handed out first come, first served: with every session busy
// on slow statements, a short statement waits its turn rather than starving.
func TestShortQueryIsNotStarvedByBusySessions(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var n uint64
			_ = s.QueryRow(ctx, "SELECT count() FROM numbers(20000000) WHERE sipHash64(number) % 3 = 0").Scan(&n)
		}()
	}
	time.Sleep(50 * time.Millisecond)
	var one uint8
	start := time.Now()
	if err := s.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("short query: %v %d", err, one)
	}
	t.Logf("short query answered after %v with 8 long statements in flight", time.Since(start))
	wg.Wait()
}
