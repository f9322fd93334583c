//go:build cgo

package engine

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

typedef struct { void *internal_data; } chdb_result;
typedef struct chdb_connection_ { void *internal_data; } *chdb_connection;

static void *fs_lib;
static chdb_connection *(*p_connect)(int, char **);
static void (*p_close_conn)(chdb_connection *);
static chdb_result *(*p_query_n)(chdb_connection, const char *, size_t, const char *, size_t);
static chdb_result *(*p_query_params_n)(chdb_connection, const char *, size_t, const char *, size_t,
	const char *const *, const size_t *, const char *const *, const size_t *, size_t);
static chdb_result *(*p_stream_query_n)(chdb_connection, const char *, size_t, const char *, size_t);
static chdb_result *(*p_stream_fetch)(chdb_connection, chdb_result *);
static void (*p_stream_cancel)(chdb_connection, chdb_result *);
static void (*p_destroy)(chdb_result *);
static char *(*p_buffer)(chdb_result *);
static size_t (*p_length)(chdb_result *);
static uint64_t (*p_rows_read)(chdb_result *);
static const char *(*p_error)(chdb_result *);
static void (*p_set_signal_handlers)(int);

#define FS_SYM(var, name) do { *(void **)(&var) = dlsym(fs_lib, name); if (!var) return name; } while (0)

// fs_load opens the library and resolves every symbol fleetscope uses. It
// returns NULL on success, or the name of what failed (dlerror's text for the
// open itself).
static const char *fs_load(const char *path) {
	// glibc loads libgcc_s the first time a thread unwinds (a cancelled or
	// exiting engine thread), and aborts the process if it cannot — as when
	// the process is out of file descriptors. Loaded now, it is found
	// without opening anything then (a missing one only leaves it lazy).
	dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_GLOBAL);
	fs_lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!fs_lib) return dlerror();
	FS_SYM(p_connect, "chdb_connect");
	FS_SYM(p_close_conn, "chdb_close_conn");
	FS_SYM(p_query_n, "chdb_query_n");
	FS_SYM(p_query_params_n, "chdb_query_with_params_n");
	FS_SYM(p_stream_query_n, "chdb_stream_query_n");
	FS_SYM(p_stream_fetch, "chdb_stream_fetch_result");
	FS_SYM(p_stream_cancel, "chdb_stream_cancel_query");
	FS_SYM(p_destroy, "chdb_destroy_query_result");
	FS_SYM(p_buffer, "chdb_result_buffer");
	FS_SYM(p_length, "chdb_result_length");
	FS_SYM(p_rows_read, "chdb_result_rows_read");
	FS_SYM(p_error, "chdb_result_error");
	FS_SYM(p_set_signal_handlers, "chdb_set_signal_handlers_enabled");
	return NULL;
}

// fs_connect opens a session on the engine while keeping the Go runtime's
// signal handlers: libchdb replaces SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGABRT
// handlers on its first connect, and disabling that resets them to SIG_DFL, so
// every handler is saved before and put back after.
static chdb_connection *fs_connect(int argc, char **argv) {
	static struct sigaction saved[NSIG];
	for (int s = 1; s < NSIG; s++) {
		if (s == SIGKILL || s == SIGSTOP) continue;
		sigaction(s, NULL, &saved[s]);
	}
	p_set_signal_handlers(0);
	chdb_connection *c = p_connect(argc, argv);
	for (int s = 1; s < NSIG; s++) {
		if (s == SIGKILL || s == SIGSTOP) continue;
		struct sigaction now;
		sigaction(s, NULL, &now);
		if (now.sa_handler != saved[s].sa_handler || now.sa_flags != saved[s].sa_flags) {
			sigaction(s, &saved[s], NULL);
		}
	}
	return c;
}

static void fs_close(chdb_connection *c) { p_close_conn(c); }

static chdb_result *fs_query(chdb_connection *c, const char *q, size_t ql, const char *f, size_t fl) {
	return p_query_n(*c, q, ql, f, fl);
}

static chdb_result *fs_query_params(chdb_connection *c, const char *q, size_t ql, const char *f, size_t fl,
	const char *const *names, const size_t *nlens, const char *const *vals, const size_t *vlens, size_t n) {
	return p_query_params_n(*c, q, ql, f, fl, names, nlens, vals, vlens, n);
}

static chdb_result *fs_stream_query(chdb_connection *c, const char *q, size_t ql, const char *f, size_t fl) {
	return p_stream_query_n(*c, q, ql, f, fl);
}
static chdb_result *fs_stream_fetch(chdb_connection *c, chdb_result *r) { return p_stream_fetch(*c, r); }
static void fs_stream_cancel(chdb_connection *c, chdb_result *r) { p_stream_cancel(*c, r); }

static void fs_destroy(chdb_result *r) { p_destroy(r); }
static char *fs_buffer(chdb_result *r) { return p_buffer(r); }
static size_t fs_length(chdb_result *r) { return p_length(r); }
static uint64_t fs_rows_read(chdb_result *r) { return p_rows_read(r); }
static const char *fs_error(chdb_result *r) { return p_error(r); }
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"
)

var (
	loadOnce sync.Once
	loadErr  error
)

// available reports whether this build can load the engine: with cgo it can.
func available() error { return nil }

// load opens the library once per process. Later calls return the first
// outcome: dlopen of a 560 MB library is not something to retry in a loop.
func load() error {
	loadOnce.Do(func() {
		path := LibraryPath()
		if _, err := os.Stat(path); err != nil {
			loadErr = fmt.Errorf("%w (looked at %s)", ErrNotInstalled, path)
			return
		}
		cpath := C.CString(path)
		defer C.free(unsafe.Pointer(cpath))
		if msg := C.fs_load(cpath); msg != nil {
			loadErr = fmt.Errorf("engine: load %s: %s", path, C.GoString(msg))
		}
	})
	return loadErr
}

// session is one chDB connection. A session runs one statement at a time;
// callers serialize access (the pool hands a session to one goroutine).
type session struct {
	c *C.chdb_connection
	// settings holds the values this session's SETs left in place, so the
	// next statement only pays for what differs.
	settings map[string]string
	// database is the session's current database ("" = default).
	database string
}

// openSession connects to the engine with its data in dir.
func openSession(dir string) (*session, error) {
	if err := load(); err != nil {
		return nil, err
	}
	args := []string{"fleetscope", "--path=" + dir}
	cargs := make([]*C.char, len(args))
	for i, a := range args {
		cargs[i] = C.CString(a)
	}
	defer func() {
		for _, a := range cargs {
			C.free(unsafe.Pointer(a))
		}
	}()
	// The connect must not migrate between OS threads while signal handlers
	// are swapped out.
	runtime.LockOSThread()
	c := C.fs_connect(C.int(len(args)), &cargs[0])
	runtime.UnlockOSThread()
	if c == nil {
		return nil, fmt.Errorf("engine: cannot open %s (is another process using it? use `fleetscope engine` to share one engine)", dir)
	}
	return &session{c: c}, nil
}

// isOpen reports whether the session still has its connection.
func (s *session) isOpen() bool { return s.c != nil }

func (s *session) close() {
	if s.c != nil {
		C.fs_close(s.c)
		s.c = nil
	}
}

// result is an engine answer held in C memory until free is called.
type result struct {
	r *C.chdb_result
}

// bytes returns the answer's bytes without copying. The slice is valid only
// until free.
func (r result) bytes() []byte {
	n := C.fs_length(r.r)
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(C.fs_buffer(r.r))), int(n))
}

func (r result) err() error {
	if msg := C.fs_error(r.r); msg != nil {
		return parseEngineError(C.GoString(msg))
	}
	return nil
}

func (r result) rowsRead() uint64 { return uint64(C.fs_rows_read(r.r)) }

func (r result) free() {
	if r.r != nil {
		C.fs_destroy(r.r)
	}
}

// query runs one statement and returns its whole answer in format. Params are
// bound server-side to {name:Type} placeholders. The caller must free the
// result, also when err is non-nil.
func (s *session) query(sql string, format string, params map[string]string) (result, error) {
	csql := unsafe.Pointer(unsafe.StringData(sql))
	cfmt := C.CString(format)
	defer C.free(unsafe.Pointer(cfmt))
	var r *C.chdb_result
	if len(params) == 0 {
		r = C.fs_query(s.c, (*C.char)(csql), C.size_t(len(sql)), cfmt, C.size_t(len(format)))
	} else {
		n := len(params)
		// The arrays handed to C must live in C memory: cgo forbids Go
		// pointers to Go pointers.
		names := (*[1 << 20]*C.char)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(uintptr(0)))))[:n:n]
		vals := (*[1 << 20]*C.char)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(uintptr(0)))))[:n:n]
		nlens := (*[1 << 20]C.size_t)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.size_t(0)))))[:n:n]
		vlens := (*[1 << 20]C.size_t)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.size_t(0)))))[:n:n]
		i := 0
		for k, v := range params {
			names[i] = (*C.char)(C.CBytes([]byte(k)))
			nlens[i] = C.size_t(len(k))
			vals[i] = (*C.char)(C.CBytes([]byte(v)))
			vlens[i] = C.size_t(len(v))
			i++
		}
		r = C.fs_query_params(s.c, (*C.char)(csql), C.size_t(len(sql)), cfmt, C.size_t(len(format)),
			&names[0], &nlens[0], &vals[0], &vlens[0], C.size_t(n))
		for j := 0; j < n; j++ {
			C.free(unsafe.Pointer(names[j]))
			C.free(unsafe.Pointer(vals[j]))
		}
		C.free(unsafe.Pointer(&names[0]))
		C.free(unsafe.Pointer(&vals[0]))
		C.free(unsafe.Pointer(&nlens[0]))
		C.free(unsafe.Pointer(&vlens[0]))
	}
	runtime.KeepAlive(sql)
	res := result{r: r}
	if r == nil {
		return res, errors.New("engine: no result")
	}
	return res, res.err()
}
