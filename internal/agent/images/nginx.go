package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// nginxVersion is the version the built-in nginx reports (the e2e images' nginx is
// 1.27).
const nginxVersion = "nginx/1.27.5"

// nginxDocRoot is the official image's document root.
const nginxDocRoot = "/usr/share/nginx/html"

// nginxPagesModTime is the Last-Modified of the built-in pages (the image's build).
func nginxPagesModTime() time.Time {
	return time.Date(2025, time.April, 16, 12, 1, 11, 0, time.UTC)
}

// nginxIndex is the image's welcome page: the title and heading users look for,
// the text in kubesvc's words.
const nginxIndex = `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { max-width: 35em; margin: 0 auto; font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>The nginx web server is up and answering. It serves this page until you give it
your own: put files in /usr/share/nginx/html (a configMap volume will do).</p>

<p>This nginx is built into kubesvc. Documentation is at
<a href="http://nginx.org/">nginx.org</a>; commercial support at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
`

// nginx50x is the image's /50x.html.
const nginx50x = `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>Error</title>
<style>
html { color-scheme: light dark; }
body { max-width: 35em; margin: 0 auto; font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>An error occurred.</h1>
<p>The page you asked for is not available right now; please try again later.</p>
<p>If you run this site, look at the error log for the cause.</p>
</body>
</html>
`

// nginxStatusText is nginx's reason phrase where it differs from Go's.
func nginxStatusText(status int) string {
	if status == http.StatusMethodNotAllowed {
		return "Not Allowed"
	}
	return http.StatusText(status)
}

// nginxErrorPage is nginx's built-in page for an error status.
func nginxErrorPage(status int) []byte {
	title := fmt.Sprintf("%d %s", status, nginxStatusText(status))
	return []byte("<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n" +
		"<center><h1>" + title + "</h1></center>\r\n" +
		"<hr><center>" + nginxVersion + "</center>\r\n</body>\r\n</html>\r\n")
}

// nginxAccessLog writes the official image's "main" log format: the combined format
// and $http_x_forwarded_for.
func nginxAccessLog(w io.Writer, r *http.Request, status int, size int64, now time.Time) {
	user := "-"
	if u, _, ok := r.BasicAuth(); ok && u != "" {
		user = logQuote(u)
	}
	fmt.Fprintf(w, "%s - %s [%s] \"%s\" %d %d \"%s\" \"%s\" \"%s\"\n",
		clientAddr(r), user, now.Format(accessLogTime), logQuote(requestLine(r)), status, size,
		logQuote(r.Referer()), logQuote(r.UserAgent()), logQuote(r.Header.Get("X-Forwarded-For")))
}

// nginxLog writes an nginx error log line to stderr.
func nginxLog(env Env, level, format string, args ...any) {
	pid := os.Getpid()
	fmt.Fprintf(env.Stderr, "%s [%s] %d#%d: %s\n", env.Now().Format("2006/01/02 15:04:05"), level, pid, pid, fmt.Sprintf(format, args...))
}

// nginxOptions are the command-line options of the built-in nginx.
type nginxOptions struct {
	// exit is set when the options are answered without serving (-v, -t), with
	// the exit code.
	exit *int
}

// parseNginxArgs reads nginx's command line: -g directives (the image's
// `-g "daemon off;"`; others are reported and ignored), -v/-V, -t/-T, -q. A
// configuration file (-c), a prefix (-p) or a signal (-s) is refused with a clear
// message: the built-in reads no configuration.
func parseNginxArgs(env Env, args []string) (nginxOptions, error) {
	var opts nginxOptions
	done := func(code int) (nginxOptions, error) {
		opts.exit = &code
		return opts, nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || len(a) < 2 {
			return opts, fmt.Errorf("invalid option: %q", a)
		}
		switch a[1] {
		case 'v', 'V':
			fmt.Fprintf(env.Stderr, "nginx version: %s (built into kubesvc)\n", nginxVersion)
			return done(0)
		case 't', 'T':
			fmt.Fprintln(env.Stderr, "nginx: kubesvc's built-in nginx reads no configuration file: nothing to test")
			return done(0)
		case 'q', 'h', '?':
			if a[1] != 'q' {
				fmt.Fprintln(env.Stderr, "Usage: nginx [-g directives] [-v] [-t]\n(kubesvc's built-in nginx: the welcome page, or the files in "+nginxDocRoot+")")
				return done(0)
			}
		case 'g':
			value := a[2:]
			if value == "" {
				i++
				if i == len(args) {
					return opts, errors.New(`option "-g" requires parameter`)
				}
				value = args[i]
			}
			for _, d := range strings.Split(value, ";") {
				d = strings.Join(strings.Fields(d), " ")
				if d != "" && d != "daemon off" {
					nginxLog(env, "warn", "kubesvc's built-in nginx ignores the directive %q", d)
				}
			}
		case 'c', 'p', 'e', 's':
			return opts, fmt.Errorf("option %q is not supported: kubesvc's built-in nginx reads no configuration and takes no signals by command", a)
		default:
			return opts, fmt.Errorf("invalid option: %q", a[1:])
		}
	}
	return opts, nil
}

// runNginx is the nginx image: the welcome page (or the pod's files in
// /usr/share/nginx/html) on :80, the access log on stdout, the error log on stderr.
// SIGQUIT (the image's stop signal) and SIGTERM both stop it gracefully: requests
// in flight finish (the agent sends SIGTERM, where containerd would send the image's
// SIGQUIT); a second signal closes the connections at once.
func runNginx(ctx context.Context, env Env, args []string) int {
	opts, err := parseNginxArgs(env, args)
	if err != nil {
		fmt.Fprintf(env.Stderr, "nginx: %v\n", err)
		return 1
	}
	if opts.exit != nil {
		return *opts.exit
	}
	var requests atomic.Int64 // numbers the error log entries, where nginx writes its connection number *N
	srv := &staticServer{
		env:          env,
		server:       nginxVersion,
		docRoot:      nginxDocRoot,
		pages:        map[string][]byte{"/": []byte(nginxIndex), "/50x.html": []byte(nginx50x)},
		pagesModTime: nginxPagesModTime(),
		errorPage:    nginxErrorPage,
		accessLog:    nginxAccessLog,
		notFound: func(r *http.Request, file string, err error) {
			nginxLog(env, "error", "*%d open() %q failed (2: No such file or directory), client: %s, server: localhost, request: \"%s\", host: %q",
				requests.Add(1), file, clientAddr(r), requestLine(r), r.Host)
		},
	}
	sigs, stop := env.Notify(syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ln, err := env.Listen(ctx, "tcp", ":80")
	if err != nil {
		nginxLog(env, "emerg", "bind() to 0.0.0.0:80 failed (%v)", err)
		return 1
	}
	if fi, err := os.Stat(env.path(nginxDocRoot)); err == nil && fi.IsDir() {
		nginxLog(env, "notice", "%s (built into kubesvc): serving the files in %s", nginxVersion, nginxDocRoot)
	} else {
		nginxLog(env, "notice", "%s (built into kubesvc): serving the welcome page (no %s in this pod)", nginxVersion, nginxDocRoot)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: time.Minute}
	err = serveUntilSignal(ctx, hs, ln, sigs, func(sig os.Signal) {
		how := "exiting"
		if sig == syscall.SIGQUIT {
			how = "shutting down"
		}
		nginxLog(env, "notice", "signal %d (%s) received, %s", signalNumber(sig), signalName(sig), how)
	})
	if err != nil {
		nginxLog(env, "alert", "%v", err)
		return 1
	}
	nginxLog(env, "notice", "exit")
	return 0
}
