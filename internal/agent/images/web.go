package images

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// staticServer is the web server of the nginx and httpd images: files from the
// image's document root when the pod has that folder (a configMap or volume mounted
// there, as the seeds do), else the image's own pages.
type staticServer struct {
	env Env
	// server is the Server header ("nginx/1.27.5").
	server string
	// docRoot is the image's document root (/usr/share/nginx/html).
	docRoot string
	// pages are the image's own pages by path ("/" included), served when the pod
	// has no document root.
	pages map[string][]byte
	// pagesModTime is their Last-Modified.
	pagesModTime time.Time
	// errorPage renders the image's page for an error status.
	errorPage func(status int) []byte
	// accessLog writes one access log line for a finished request.
	accessLog func(w io.Writer, r *http.Request, status int, size int64, now time.Time)
	// notFound, when set, logs a request for a missing file to the error log.
	notFound func(r *http.Request, file string, err error)
}

func (s *staticServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w}
	defer func() { s.accessLog(s.env.Stdout, r, rec.status(), rec.size, s.env.Now()) }()
	rec.Header().Set("Server", s.server)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.fail(rec, r, http.StatusMethodNotAllowed)
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/") {
		s.fail(rec, r, http.StatusBadRequest)
		return
	}
	urlPath := path.Clean(r.URL.Path)
	if strings.HasSuffix(r.URL.Path, "/") && urlPath != "/" {
		urlPath += "/"
	}
	root := s.env.path(s.docRoot)
	if fi, err := os.Stat(root); err == nil && fi.IsDir() {
		s.serveFile(rec, r, root, urlPath)
		return
	}
	page, ok := s.pages[urlPath]
	if !ok && strings.HasSuffix(urlPath, "/index.html") {
		page, ok = s.pages[strings.TrimSuffix(urlPath, "index.html")]
	}
	if !ok {
		if s.notFound != nil {
			s.notFound(r, s.docRoot+urlPath, fs.ErrNotExist)
		}
		s.fail(rec, r, http.StatusNotFound)
		return
	}
	name := "index.html"
	if !strings.HasSuffix(urlPath, "/") {
		name = path.Base(urlPath)
	}
	rec.Header().Set("ETag", etag(s.pagesModTime, int64(len(page))))
	http.ServeContent(rec, r, name, s.pagesModTime, bytes.NewReader(page))
}

// serveFile serves urlPath from the document root on disk: a folder's index.html,
// a redirect to the folder with its "/" (as nginx and httpd do), 403 for what the
// server may not read, 404 for what is not there.
func (s *staticServer) serveFile(w http.ResponseWriter, r *http.Request, root, urlPath string) {
	file := filepath.Join(root, filepath.FromSlash(urlPath))
	fi, err := os.Stat(file)
	if err == nil && fi.IsDir() {
		if !strings.HasSuffix(urlPath, "/") {
			w.Header().Set("Location", urlPath+"/")
			s.fail(w, r, http.StatusMovedPermanently)
			return
		}
		file = filepath.Join(file, "index.html")
		fi, err = os.Stat(file)
		if errors.Is(err, fs.ErrNotExist) {
			// No index and no listing: nginx's "directory index ... is forbidden".
			s.fail(w, r, http.StatusForbidden)
			return
		}
	}
	var f *os.File
	if err == nil {
		f, err = os.Open(file)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if s.notFound != nil {
			s.notFound(r, s.docRoot+urlPath, err)
		}
		s.fail(w, r, http.StatusNotFound)
		return
	case err != nil:
		s.fail(w, r, http.StatusForbidden)
		return
	}
	defer f.Close()
	w.Header().Set("ETag", etag(fi.ModTime(), fi.Size()))
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}

// fail answers with the image's error page.
func (s *staticServer) fail(w http.ResponseWriter, r *http.Request, status int) {
	body := s.errorPage(status)
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// etag is nginx's and httpd's weak-free entity tag: modification time and size in
// hex.
func etag(mod time.Time, size int64) string {
	return fmt.Sprintf(`"%x-%x"`, mod.Unix(), size)
}

// recorder remembers a response's status and body size for the access log.
type recorder struct {
	http.ResponseWriter
	code int
	size int64
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *recorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// clientAddr is the client's IP address, without the port.
func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// logQuote escapes a value for a quoted access log field as nginx does: '"', '\'
// and bytes outside printable ASCII become \xHH; an empty value is "-".
func logQuote(s string) string {
	if s == "" {
		return "-"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 0x20 || c >= 0x7f {
			fmt.Fprintf(&b, `\x%02X`, c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// requestLine is the request's first line as the client sent it.
func requestLine(r *http.Request) string {
	return r.Method + " " + r.RequestURI + " " + r.Proto
}

// accessLogTime is the time in an access log ($time_local, %t).
const accessLogTime = "02/Jan/2006:15:04:05 -0700"
