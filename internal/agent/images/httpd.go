package images

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
)

// httpdVersion is the Server header of the built-in httpd.
const httpdVersion = "Apache/2.4.62 (Unix)"

// httpdDocRoot is the official image's document root.
const httpdDocRoot = "/usr/local/apache2/htdocs"

// httpdIndex is the official image's index.html.
const httpdIndex = "<html><body><h1>It works!</h1></body></html>\n"

// httpdErrorPage is httpd's page for an error status.
func httpdErrorPage(status int) []byte {
	var why string
	switch status {
	case http.StatusNotFound:
		why = "The requested URL was not found on this server."
	case http.StatusForbidden:
		why = "You don't have permission to access this resource."
	case http.StatusMethodNotAllowed:
		why = "The requested method is not allowed for this URL."
	case http.StatusMovedPermanently:
		why = "The document has moved."
	default:
		why = "Your browser sent a request that this server could not understand."
	}
	return []byte(fmt.Sprintf("<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n"+
		"<title>%d %s</title>\n</head><body>\n<h1>%s</h1>\n<p>%s</p>\n</body></html>\n",
		status, http.StatusText(status), http.StatusText(status), why))
}

// httpdAccessLog writes the common log format, httpd's default.
func httpdAccessLog(w io.Writer, r *http.Request, status int, size int64, now time.Time) {
	bytes := "-"
	if size > 0 {
		bytes = fmt.Sprint(size)
	}
	user := "-"
	if u, _, ok := r.BasicAuth(); ok && u != "" {
		user = logQuote(u)
	}
	fmt.Fprintf(w, "%s - %s [%s] \"%s\" %d %s\n", clientAddr(r), user, now.Format(accessLogTime), logQuote(requestLine(r)), status, bytes)
}

// httpdLog writes an httpd error log line to stderr.
func httpdLog(env Env, level, code, msg string) {
	pid := os.Getpid()
	fmt.Fprintf(env.Stderr, "[%s] [mpm_event:%s] [pid %d:tid %d] %s: %s\n",
		env.Now().Format("Mon Jan 02 15:04:05.000000 2006"), level, pid, pid, code, msg)
}

// runHTTPD is the httpd image: "It works!" (or the pod's files in
// /usr/local/apache2/htdocs) on :80, the access log on stdout. SIGWINCH (the image's
// stop signal), SIGTERM and SIGINT stop it gracefully. It takes httpd-foreground's
// and httpd's -D NAME (ignored) and -v.
func runHTTPD(ctx context.Context, env Env, args []string) int {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-v" || a == "-V":
			fmt.Fprintf(env.Stdout, "Server version: %s (built into kubesvc)\n", httpdVersion)
			return 0
		case a == "-D":
			i++
		case strings.HasPrefix(a, "-D"):
		default:
			fmt.Fprintf(env.Stderr, "httpd: option %q is not supported by kubesvc's built-in httpd (it reads no configuration)\n", a)
			return 1
		}
	}
	srv := &staticServer{
		env:          env,
		server:       httpdVersion,
		docRoot:      httpdDocRoot,
		pages:        map[string][]byte{"/": []byte(httpdIndex)},
		pagesModTime: time.Date(2024, time.July, 17, 1, 4, 5, 0, time.UTC),
		errorPage:    httpdErrorPage,
		accessLog:    httpdAccessLog,
	}
	sigs, stop := env.Notify(syscall.SIGWINCH, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ln, err := env.Listen(ctx, "tcp", ":80")
	if err != nil {
		httpdLog(env, "emerg", "AH00072", fmt.Sprintf("make_sock: could not bind to address [::]:80: %v", err))
		return 1
	}
	httpdLog(env, "notice", "AH00489", httpdVersion+" (built into kubesvc) configured -- resuming normal operations")
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: time.Minute}
	err = serveUntilSignal(ctx, hs, ln, sigs, func(sig os.Signal) {
		httpdLog(env, "notice", "AH00492", "caught "+signalName(sig)+", shutting down gracefully")
	})
	if err != nil {
		httpdLog(env, "alert", "AH00050", err.Error())
		return 1
	}
	return 0
}
