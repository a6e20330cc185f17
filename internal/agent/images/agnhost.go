package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
)

// agnhostVersion is the agnhost release whose behaviour the built-in follows
// (k8s.io/kubernetes v1.37, test/images/agnhost).
const agnhostVersion = "2.66.1"

// agnhostSubcommands returns the agnhost subcommands kubesvc implements: the ones
// test/e2e/network and test/e2e/framework run.
func agnhostSubcommands() map[string]program {
	return map[string]program{
		"connect":         runConnect,
		"dns-server-list": runDNSServerList,
		"dns-suffix":      runDNSSuffix,
		"etc-hosts":       runEtcHosts,
		"netexec":         runNetexec,
		"nettest":         runNettest,
		"pause":           runAgnhostPause,
		"porter":          runPorter,
		"serve-hostname":  runServeHostname,
		"test-webserver":  runTestWebserver,
	}
}

// runAgnhost is registry.k8s.io/e2e-test-images/agnhost: one subcommand per
// behaviour. A subcommand kubesvc does not implement exits 1 with a message that
// says so.
func runAgnhost(ctx context.Context, env Env, args []string) int {
	subs := agnhostSubcommands()
	var names []string
	for name := range subs {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintf(env.Stdout, "agnhost %s, built into kubesvc\n\nUsage:\n  agnhost [command]\n\nAvailable Commands:\n  %s\n",
			agnhostVersion, strings.Join(names, "\n  "))
		return 0
	}
	if args[0] == "--version" || args[0] == "-v" {
		fmt.Fprintf(env.Stdout, "agnhost version %s (built into kubesvc)\n", agnhostVersion)
		return 0
	}
	run, ok := subs[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "agnhost: %q is not implemented in kubesvc's built-in agnhost (it implements %s)\n",
			args[0], strings.Join(names, ", "))
		return 1
	}
	return run(ctx, env, args[1:])
}

// agnhostFlags is a flag set for one agnhost subcommand, parsed as cobra does
// (--flag=value, --flag value), with no positional arguments beyond maxArgs.
func agnhostFlags(env Env, name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// parseAgnhostFlags parses args and checks the number of positional arguments; it
// prints cobra's kind of error and returns false on a mistake.
func parseAgnhostFlags(env Env, fs *pflag.FlagSet, args []string, minArgs, maxArgs int) bool {
	err := fs.Parse(args)
	if err == nil && (fs.NArg() < minArgs || fs.NArg() > maxArgs) {
		err = fmt.Errorf("accepts between %d and %d arg(s), received %d", minArgs, maxArgs, fs.NArg())
	}
	if err != nil {
		if !errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(env.Stderr, "Error: %v\n", err)
		}
		return false
	}
	return true
}

// runAgnhostPause is `agnhost pause`: it waits for SIGINT (exit 1) or SIGTERM
// (exit 2), and writes why it exits to stdout and to the termination message file
// ($TERMINATION_MESSAGE_PATH, else /dev/termination-log). In a kubesvc pod /dev is
// the machine's: the default file is written only when it exists (the runtime
// provides it).
func runAgnhostPause(ctx context.Context, env Env, args []string) int {
	if !parseAgnhostFlags(env, agnhostFlags(env, "pause"), args, 0, 0) {
		return 1
	}
	fmt.Fprintln(env.Stdout, "Paused")
	sigs, stop := env.Notify(syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fmt.Fprintln(env.Stdout, "Signals registered")
	var sig os.Signal
	select {
	case sig = <-sigs:
	case <-ctx.Done():
		return 0
	}
	msg := fmt.Sprintf("exiting because of signal %q\n", sig)
	path, set := env.getenv("TERMINATION_MESSAGE_PATH")
	if !set || path == "" {
		path = "/dev/termination-log"
		if _, err := os.Stat(env.path(path)); err != nil {
			path = ""
		}
	}
	if path != "" {
		_ = os.WriteFile(env.path(path), []byte(msg), 0o644)
	}
	_, _ = io.WriteString(env.Stdout, msg)
	if sig == syscall.SIGINT {
		return 1
	}
	return 2
}

// resolvConfLine returns the values of the first /etc/resolv.conf line that
// starts with key, split on single spaces as agnhost does.
func resolvConfLine(env Env, key string) ([]string, error) {
	data, err := os.ReadFile(env.path("/etc/resolv.conf"))
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, key) {
			return strings.Split(line, " ")[1:], nil
		}
	}
	return nil, fmt.Errorf("could not find %q in /etc/resolv.conf", key)
}

// runDNSSuffix is `agnhost dns-suffix`: the search list, comma-separated.
func runDNSSuffix(_ context.Context, env Env, args []string) int {
	return printResolvConf(env, "dns-suffix", "search", args)
}

// runDNSServerList is `agnhost dns-server-list`: the first nameserver line's
// values, comma-separated.
func runDNSServerList(_ context.Context, env Env, args []string) int {
	return printResolvConf(env, "dns-server-list", "nameserver", args)
}

func printResolvConf(env Env, name, key string, args []string) int {
	if !parseAgnhostFlags(env, agnhostFlags(env, name), args, 0, 0) {
		return 1
	}
	values, err := resolvConfLine(env, key)
	if err != nil {
		fmt.Fprintf(env.Stderr, "agnhost %s: %v\n", name, err)
		return 2
	}
	fmt.Fprintln(env.Stdout, strings.Join(values, ","))
	return 0
}

// runEtcHosts is `agnhost etc-hosts`: /etc/hosts.
func runEtcHosts(_ context.Context, env Env, args []string) int {
	if !parseAgnhostFlags(env, agnhostFlags(env, "etc-hosts"), args, 0, 0) {
		return 1
	}
	data, err := os.ReadFile(env.path("/etc/hosts"))
	if err != nil {
		fmt.Fprintf(env.Stderr, "agnhost etc-hosts: %v\n", err)
		return 2
	}
	fmt.Fprintln(env.Stdout, string(data))
	return 0
}

// runTestWebserver is `agnhost test-webserver [--port 80]`: a file server of the
// filesystem root, with the real one's headers (the e2e DNS tests read the files
// their probes write to a volume this way). A kubesvc pod sees the machine's
// filesystem, so it serves only what any user of the machine may read: files
// readable by others, in folders that others may enter.
func runTestWebserver(ctx context.Context, env Env, args []string) int {
	fs := agnhostFlags(env, "test-webserver")
	port := fs.Int("port", 80, "Port number.")
	if !parseAgnhostFlags(env, fs, args, 0, 0) {
		return 1
	}
	ln, err := env.Listen(ctx, "tcp", fmt.Sprintf(":%d", *port))
	if err != nil {
		env.logger().Print(err)
		return 1
	}
	files := http.FileServer(http.FS(worldReadableFS{root: env.path("/")}))
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private")
		// As the real one: for the API server's proxy, and no 304s.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "DNT,X-Mx-ReqToken,Keep-Alive,User-Agent,X-Requested-With,Cache-Control,Content-Type")
		r.Header.Del("If-Modified-Since")
		files.ServeHTTP(w, r)
	})}
	if err := serveUntilSignal(ctx, hs, ln, nil, func(os.Signal) {}); err != nil {
		env.logger().Print(err)
		return 1
	}
	return 0
}

// worldReadableFS is the tree under root, limited to what others (not the owner,
// not the group) may read: every folder on the way must be searchable by others,
// the file readable by others.
type worldReadableFS struct {
	root string
}

func (w worldReadableFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	p := w.root
	parts := strings.Split(name, "/")
	if name == "." {
		parts = nil
	}
	for i := 0; ; i++ {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		last := i == len(parts)
		var need fs.FileMode = 0o001 // search, for a folder on the way
		if last {
			need = 0o004 // read, for the file or folder opened
		}
		if fi.Mode().Perm()&need == 0 {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
		}
		if last {
			return os.Open(p)
		}
		p = filepath.Join(p, parts[i])
	}
}
