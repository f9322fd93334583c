package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestServeEnvTwinsParseLikeTheirFlags(t *testing.T) {
	t.Setenv("FLEETSCOPE_INGEST_MAX_BODY", "8MiB")
	t.Setenv("FLEETSCOPE_INGEST_MAX_BACKLOG", "512MiB")
	t.Setenv("FLEETSCOPE_INGEST_FLUSH_INTERVAL", "1500ms")
	t.Setenv("FLEETSCOPE_DEMO", "true")
	c, err := parseServe([]string{"--ingest-flush-interval", "2s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.ingest.MaxBodySize != 8<<20 || c.ingest.MaxBacklog != 512<<20 || c.ingest.FlushInterval != 2*time.Second || !c.demo {
		t.Fatalf("max body %d, backlog %d, flush %s, demo %v", c.ingest.MaxBodySize, c.ingest.MaxBacklog, c.ingest.FlushInterval, c.demo)
	}
}

// A bad value of an environment twin stops start-up, naming the variable,
// in the real binary: never a silent default or a truncated number.
func TestBadEnvTwinStopsTheBinary(t *testing.T) {
	bin := fleetscopeBinary(t)
	for _, tc := range []struct{ env, value string }{
		{"FLEETSCOPE_INGEST_MAX_BODY", "abc"},
		{"FLEETSCOPE_INGEST_MAX_BODY", "8 bytes"},
		{"FLEETSCOPE_INGEST_MAX_READINGS", "1e6"},
		{"FLEETSCOPE_DEMO", "maybe"},
		{"FLEETSCOPE_RETENTION", "35"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, bin, "serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0")
		cmd.Env = append(cmd.Environ(), tc.env+"="+tc.value)
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if err == nil || timedOut || !strings.Contains(string(out), tc.env) {
			t.Fatalf("%s=%q: exit %v, output %s; want a failed start naming the variable", tc.env, tc.value, err, out)
		}
	}
}

// FLEETSCOPE_INGEST_MAX_BODY=8MiB is 8 MiB in the running binary (its
// start-up log states the limits it runs with).
func TestEnvSizeReachesTheRunningBinary(t *testing.T) {
	addr := freeAddr(t)
	c := startChild(t, []string{"FLEETSCOPE_INGEST_MAX_BODY=8MiB"}, "serve", "--addr", addr, "--data", t.TempDir())
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		log := c.log.String()
		c.mu.Unlock()
		if strings.Contains(log, `"msg":"fleetscope serving"`) {
			if !strings.Contains(log, `"ingest_max_body":8388608`) {
				t.Fatalf("start-up log does not state an 8 MiB limit:\n%s", log)
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no start-up within 2 minutes:\n%s", c.log)
}

// --debug-addr is a deprecated alias of --ops-addr (and its twin
// FLEETSCOPE_OPS_ADDR works like every flag's).
func TestDebugAddrIsOpsAddr(t *testing.T) {
	f := func(args []string, want string, fails bool) {
		t.Helper()
		c, err := parseServe(args)
		if (err != nil) != fails || err == nil && c.opsAddr != want {
			t.Fatalf("parseServe(%q) = %q, %v; want %q (error %v)", args, c.opsAddr, err, want, fails)
		}
	}
	f(nil, "", false)
	f([]string{"--ops-addr", "127.0.0.1:9180"}, "127.0.0.1:9180", false)
	f([]string{"--debug-addr", "127.0.0.1:6060"}, "127.0.0.1:6060", false)
	f([]string{"--debug-addr", "127.0.0.1:9180", "--ops-addr", "127.0.0.1:9180"}, "127.0.0.1:9180", false)
	f([]string{"--debug-addr", "127.0.0.1:6060", "--ops-addr", "127.0.0.1:9180"}, "", true)
	t.Setenv("FLEETSCOPE_OPS_ADDR", "127.0.0.1:9181")
	f(nil, "127.0.0.1:9181", false)
}
