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

	"github.com/fleetscope/fleetscope/internal/envflag"
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
	setMemoryLimit(log)
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

// envFlags is a FlagSet whose flags have environment twins (package
// envflag): prefix + the flag's name in upper case, parsed by the flag's own
// parser, a bad value an error naming the variable. Each subcommand has its
// own prefix, so that `serve` and `engine` on one host read their own
// FLEETSCOPE_ADDR and FLEETSCOPE_ENGINE_ADDR.
type envFlags struct {
	*flag.FlagSet
	prefix string
}

// envPrefixes are the subcommands' twin prefixes.
var envPrefixes = map[string]string{"serve": "FLEETSCOPE_", "engine": "FLEETSCOPE_ENGINE_"}

func newFlags(name string) envFlags {
	prefix, ok := envPrefixes[name]
	if !ok {
		prefix = "FLEETSCOPE_" + strings.ToUpper(strings.NewReplacer(" ", "_", "-", "_").Replace(name)) + "_"
	}
	return envFlags{flag.NewFlagSet(name, flag.ContinueOnError), prefix}
}

// Parse applies the environment twins, then the command line (which wins).
func (f envFlags) Parse(args []string) error {
	f.FlagSet.VisitAll(func(fl *flag.Flag) { fl.Usage += " (env " + envflag.Name(f.prefix, fl.Name) + ")" })
	return envflag.Parse(f.FlagSet, f.prefix, args)
}

// Bytes defines a size flag that takes units (8MiB, 2GiB).
func (f envFlags) Bytes(name string, def int64, help string) *int64 {
	p := new(int64)
	envflag.BytesVar(f.FlagSet, p, name, def, help)
	return p
}
