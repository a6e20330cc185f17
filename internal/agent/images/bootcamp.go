package images

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// runBootcamp is gcr.io/google-samples/kubernetes-bootcamp (a node.js server.js):
// on :8080 every request gets "Hello Kubernetes bootcamp! | Running on: HOSTNAME |
// v=1", and a log line on stdout. The optional argument server.js (the image's
// `node server.js`) is accepted; --response-version=N answers v=N (the tutorial's
// v2 image). The real image has no signal handler: SIGTERM ends it (default action).
func runBootcamp(ctx context.Context, env Env, args []string) int {
	version := "1"
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "--response-version="):
			version = strings.TrimPrefix(a, "--response-version=")
		case a == "server.js" || a == "/server.js":
		default:
			fmt.Fprintf(env.Stderr, "kubernetes-bootcamp: kubesvc's built-in image runs only server.js, not %q\n", a)
			return 1
		}
	}
	host, err := env.Hostname()
	if err != nil {
		fmt.Fprintf(env.Stderr, "kubernetes-bootcamp: %v\n", err)
		return 1
	}
	ln, err := env.Listen(ctx, "tcp", ":8080")
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error: listen EADDRINUSE :::8080 (%v)\n", err)
		return 1
	}
	start := env.Now()
	// console.log separates its arguments with spaces: hence the double spaces.
	fmt.Fprintf(env.Stdout, "Kubernetes Bootcamp App Started At: %s | Running On:  %s \n\n", jsDate(start), host)
	var (
		mu       sync.Mutex
		requests int
	)
	body := "Hello Kubernetes bootcamp! | Running on: " + host + " | v=" + version + "\n"
	hs := &http.Server{ReadHeaderTimeout: time.Minute, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(body))
		mu.Lock()
		requests++
		n := requests
		mu.Unlock()
		now := env.Now()
		uptime := strconv.FormatFloat(float64(now.Sub(start).Milliseconds())/1000, 'f', -1, 64)
		fmt.Fprintf(env.Stdout, "Running On: %s | Total Requests: %d | App Uptime: %s seconds | Log Time: %s\n", host, n, uptime, jsDate(now))
	})}
	if err := serveUntilSignal(ctx, hs, ln, nil, func(os.Signal) {}); err != nil {
		fmt.Fprintf(env.Stderr, "kubernetes-bootcamp: %v\n", err)
		return 1
	}
	return 0
}

// jsDate is a Date as node's console.log writes it: ISO 8601 in UTC, milliseconds.
func jsDate(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
