package images

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Env is what a built-in program sees of its process. Run fills every unset field
// with the process's own (os.Stdout, os.Environ, signal.Notify, ...), so the hidden
// mode passes Env{}; tests set the fields they control.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Environ is the environment, KEY=VALUE.
	Environ func() []string
	// Hostname is the pod's hostname (the UTS namespace's).
	Hostname func() (string, error)
	// Now is the clock that log lines and uptimes read.
	Now func() time.Time
	// Notify delivers the given signals on the returned channel until stop is
	// called (signal.Notify). A built-in asks only for the signals its real image
	// handles; the others keep their default action.
	Notify func(sig ...os.Signal) (c <-chan os.Signal, stop func())
	// Listen and ListenPacket open the program's sockets. The address is the one the
	// real image binds (":80", ":8080"): in a pod, every address of the pod's
	// network namespace. Tests bind 127.0.0.1:0 instead and learn the port here.
	Listen       func(ctx context.Context, network, address string) (net.Listener, error)
	ListenPacket func(ctx context.Context, network, address string) (net.PacketConn, error)
	// LookPath finds a program of the machine (exec.LookPath).
	LookPath func(file string) (string, error)
	// Root is where the image's absolute paths (/usr/share/nginx/html,
	// /etc/resolv.conf, /uploads) are found: "/" in a pod.
	Root string
	// Shell runs netexec's /shell commands ("/bin/sh", as in the image).
	Shell string
}

// withDefaults fills the unset fields with the process's own, and makes Stdout and
// Stderr safe for the concurrent writers of one program (one log line per Write).
func (e Env) withDefaults() Env {
	if e.Stdin == nil {
		e.Stdin = os.Stdin
	}
	if e.Stdout == nil {
		e.Stdout = os.Stdout
	}
	if e.Stderr == nil {
		e.Stderr = os.Stderr
	}
	e.Stdout, e.Stderr = &lockedWriter{w: e.Stdout}, &lockedWriter{w: e.Stderr}
	if e.Environ == nil {
		e.Environ = os.Environ
	}
	if e.Hostname == nil {
		e.Hostname = os.Hostname
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Notify == nil {
		e.Notify = func(sig ...os.Signal) (<-chan os.Signal, func()) {
			c := make(chan os.Signal, 1)
			signal.Notify(c, sig...)
			return c, func() { signal.Stop(c) }
		}
	}
	if e.Listen == nil {
		e.Listen = func(ctx context.Context, network, address string) (net.Listener, error) {
			var lc net.ListenConfig
			return lc.Listen(ctx, network, address)
		}
	}
	if e.ListenPacket == nil {
		e.ListenPacket = func(ctx context.Context, network, address string) (net.PacketConn, error) {
			var lc net.ListenConfig
			return lc.ListenPacket(ctx, network, address)
		}
	}
	if e.LookPath == nil {
		e.LookPath = exec.LookPath
	}
	if e.Root == "" {
		e.Root = "/"
	}
	if e.Shell == "" {
		e.Shell = "/bin/sh"
	}
	return e
}

// path is an absolute path of the image, under Root.
func (e Env) path(p string) string {
	return filepath.Join(e.Root, filepath.FromSlash(p))
}

// getenv is os.LookupEnv on Environ.
func (e Env) getenv(key string) (string, bool) {
	for _, kv := range e.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// logger logs as Go's log package does by default (the agnhost programs' log):
// date and time, to stderr.
func (e Env) logger() *log.Logger {
	return log.New(e.Stderr, "", log.LstdFlags)
}

// lockedWriter serializes writes.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// program is a built-in: it runs until it exits or ctx ends, and returns the exit
// code of the process.
type program func(ctx context.Context, env Env, args []string) int

// programs returns the built-in programs by name.
func programs() map[string]program {
	m := map[string]program{
		ProgramNginx:    runNginx,
		ProgramHTTPD:    runHTTPD,
		ProgramBootcamp: runBootcamp,
		ProgramAgnhost:  runAgnhost,
		ProgramPause:    runPause,
	}
	for _, pm := range PackageManagers() {
		m[pm] = runPackageManager(pm)
	}
	return m
}

// Programs returns the names Run takes, sorted.
func Programs() []string {
	var names []string
	for name := range programs() {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Run runs the built-in program name (one of Programs) with args, as the
// container's process, and returns its exit code. The program runs until it exits,
// as its real image would (on its image's signals, an /exit request, ...), or until
// ctx ends (exit code 0). An unknown name prints an error and returns 127, a shell's
// "command not found".
func Run(ctx context.Context, env Env, name string, args []string) int {
	env = env.withDefaults()
	p, ok := programs()[name]
	if !ok {
		fmt.Fprintf(env.Stderr, "kubesvc %s: no built-in program %q (built in: %s)\n",
			SubcommandBuiltinImage, name, strings.Join(Programs(), ", "))
		return 127
	}
	return p(ctx, env, args)
}
