// Command fleetscope is the solar-monitoring backend: one binary whose
// subcommands serve the API (serve), share an embedded engine between
// processes (engine) and measure it (bench).
//
//	fleetscope serve  [--addr 127.0.0.1:8080] [--data ./data] [--clickhouse DSN] [--demo]
//	fleetscope engine [--addr 127.0.0.1:8123] [--data DIR]
//	fleetscope bench  store|ingest|query [flags]
//	fleetscope version
//
// Every flag has an environment twin (FLEETSCOPE_ADDR, FLEETSCOPE_DATA,
// FLEETSCOPE_CLICKHOUSE, …); a flag given on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/fleetscope/fleetscope/store"
	"github.com/fleetscope/fleetscope/store/engine"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `fleetscope — solar fleet monitoring backend

usage:
  fleetscope serve   run the HTTP API (ingest, queries, access control, metrics)
  fleetscope engine  serve the embedded ClickHouse engine on a loopback port for other fleetscope processes
  fleetscope bench   store|ingest|query — measure against a baseline from the same run
  fleetscope version print version information

Run "fleetscope <command> -h" for the flags of a command.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		err = runServe(ctx, log, args)
	case "engine":
		err = runEngine(ctx, log, args)
	case "bench":
		err = runBench(ctx, log, args)
	case "version", "-version", "--version":
		fmt.Printf("fleetscope %s (schema %d, embedded engine chDB %s)\n", version, store.SchemaVersion(), engine.Version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "fleetscope: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		log.Error("fleetscope failed", "err", err)
		fmt.Fprintf(os.Stderr, "fleetscope: %v\n", err)
		os.Exit(1)
	}
}

func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("FLEETSCOPE_LOG_LEVEL"))); err != nil {
		return slog.LevelInfo
	}
	return l
}

// envFlags is a FlagSet whose flags default to their environment twins.
type envFlags struct {
	*flag.FlagSet
}

func newFlags(name string) envFlags {
	return envFlags{flag.NewFlagSet(name, flag.ContinueOnError)}
}

// envName is the environment twin of a flag: FLEETSCOPE_ + upper-case name.
func envName(flagName string) string {
	return "FLEETSCOPE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (f envFlags) String(name, def, help string) *string {
	if v, ok := os.LookupEnv(envName(name)); ok {
		def = v
	}
	return f.FlagSet.String(name, def, help+" (env "+envName(name)+")")
}

func (f envFlags) Bool(name string, def bool, help string) *bool {
	if v, ok := os.LookupEnv(envName(name)); ok {
		def = v == "1" || strings.EqualFold(v, "true") || strings.EqualFold(v, "yes")
	}
	return f.FlagSet.Bool(name, def, help+" (env "+envName(name)+")")
}

func (f envFlags) Int(name string, def int, help string) *int {
	if v, ok := os.LookupEnv(envName(name)); ok {
		fmt.Sscan(v, &def)
	}
	return f.FlagSet.Int(name, def, help+" (env "+envName(name)+")")
}
