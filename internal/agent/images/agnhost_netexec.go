package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// netexecDialTimeout bounds each /dial attempt, as in agnhost.
const netexecDialTimeout = 5 * time.Second

// netexec is one run of `agnhost netexec`.
type netexec struct {
	env      Env
	log      *log.Logger
	httpPort int
	udpPort  int
	// ready: a UDP server is up (what /healthz and /readyz report).
	ready atomic.Bool
	// sigterm is closed when SIGTERM arrives (/readyz answers 503 from then on).
	sigterm chan struct{}
	// exit asks the program to end: at once (timeout 0), or after a graceful
	// shutdown of the HTTP server.
	exit chan netexecExit
}

// netexecExit is an /exit or /shutdown request.
type netexecExit struct {
	code    int
	timeout time.Duration
}

// netexecFlags are netexec's command-line flags.
type netexecFlags struct {
	httpPort, udpPort, sctpPort int
	certFile, keyFile           string
	override                    string
	udpAddrs                    string
	delayShutdown               int
}

// parseNetexecFlags parses netexec's flags (the real one's names and defaults).
func parseNetexecFlags(env Env, args []string) (netexecFlags, bool) {
	var f netexecFlags
	fs := agnhostFlags(env, "netexec")
	fs.IntVar(&f.httpPort, "http-port", 8080, "HTTP Listen Port")
	fs.StringVar(&f.certFile, "tls-cert-file", "", "File containing an x509 certificate for HTTPS. (CA cert, if any, concatenated after server cert)")
	fs.StringVar(&f.keyFile, "tls-private-key-file", "", "File containing an x509 private key matching --tls-cert-file")
	fs.IntVar(&f.udpPort, "udp-port", 8081, "UDP Listen Port")
	fs.IntVar(&f.sctpPort, "sctp-port", -1, "SCTP Listen Port")
	fs.StringVar(&f.override, "http-override", "", "Override the HTTP handler to always respond as if it were a GET with this path & params")
	fs.StringVar(&f.udpAddrs, "udp-listen-addresses", "", "A comma separated list of ip addresses the udp servers listen from")
	fs.IntVar(&f.delayShutdown, "delay-shutdown", 0, "Number of seconds to delay shutdown when receiving SIGTERM.")
	return f, parseAgnhostFlags(env, fs, args, 0, 0)
}

// runNetexec is `agnhost netexec`: an HTTP server (--http-port, 8080) with the
// endpoints the e2e network tests use (/, /echo, /clientip, /serverport, /header,
// /dial, /exit, /healthz, /readyz, /hostname, /hostName, /envvar, /redirect, /shell,
// /shutdown, /upload) and a UDP server (--udp-port, 8081; -1 for none; on
// --udp-listen-addresses) that answers hostname, echo, clientip, serverport and
// envvar. SCTP is not supported: --sctp-port other than -1 is reported and
// ignored. On SIGTERM /readyz turns 503, and after --delay-shutdown seconds it
// exits 0.
func runNetexec(ctx context.Context, env Env, args []string) int {
	f, ok := parseNetexecFlags(env, args)
	if !ok {
		return 1
	}
	n := &netexec{
		env:      env,
		log:      env.logger(),
		httpPort: f.httpPort,
		udpPort:  f.udpPort,
		sigterm:  make(chan struct{}),
		exit:     make(chan netexecExit, 1),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs, stop := env.Notify(syscall.SIGTERM)
	defer stop()

	fatal := make(chan error, 1)
	if f.udpPort != -1 {
		closeUDP, err := n.startUDP(ctx, f.udpAddrs, fatal)
		defer closeUDP()
		if err != nil {
			n.log.Print(err)
			return 1
		}
	}
	if f.sctpPort != -1 {
		n.log.Printf("SCTP is not supported by kubesvc's built-in agnhost: not serving --sctp-port=%d", f.sctpPort)
	}
	var handler http.Handler = n.mux()
	if f.override != "" {
		handler = overrideHandler(handler, f.override)
	}
	ln, err := env.Listen(ctx, "tcp", fmt.Sprintf(":%d", f.httpPort))
	if err != nil {
		n.log.Print(err)
		return 1
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: time.Minute}
	defer hs.Close()
	n.log.Printf("Started HTTP server on port %d", f.httpPort)
	go func() {
		var err error
		if f.certFile != "" {
			err = hs.ServeTLS(ln, env.path(f.certFile), env.path(f.keyFile))
		} else {
			err = hs.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			select {
			case fatal <- err:
			default:
			}
		}
	}()
	return n.wait(ctx, hs, sigs, fatal, time.Duration(f.delayShutdown)*time.Second)
}

// startUDP binds the UDP servers (one per listen address) and serves them; close
// closes the sockets bound so far, also after an error.
func (n *netexec) startUDP(ctx context.Context, listenAddrs string, fatal chan<- error) (closeAll func(), err error) {
	var conns []net.PacketConn
	closeAll = func() {
		for _, pc := range conns {
			_ = pc.Close()
		}
	}
	addrs, err := parseListenAddresses(listenAddrs)
	if err != nil {
		return closeAll, err
	}
	for _, a := range addrs {
		pc, err := n.env.ListenPacket(ctx, "udp", net.JoinHostPort(a, strconv.Itoa(n.udpPort)))
		if err != nil {
			return closeAll, fmt.Errorf("Error occurred: failed to create listener for UDP address %s: %w", a, err)
		}
		conns = append(conns, pc)
		n.log.Printf("Started UDP server on port %s", pc.LocalAddr())
		// Ready (for /healthz and /readyz) once a UDP socket is bound.
		n.ready.Store(true)
		go n.serveUDP(ctx, pc, fatal)
	}
	return closeAll, nil
}

// wait runs until the program's end and returns its exit code: an /exit or
// /shutdown request, SIGTERM (then /readyz says 503 and, after delay, exit 0), a
// server's failure (exit 1), or ctx.
func (n *netexec) wait(ctx context.Context, hs *http.Server, sigs <-chan os.Signal, fatal <-chan error, delay time.Duration) int {
	var delayed <-chan time.Time
	delayTimer := time.NewTimer(delay)
	delayTimer.Stop()
	defer delayTimer.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0
		case err := <-fatal:
			n.log.Print(err)
			return 1
		case <-sigs:
			sigs = nil
			close(n.sigterm)
			if delay > 0 {
				n.log.Printf("Sleeping %d seconds before terminating...", int(delay/time.Second))
			}
			delayTimer.Reset(delay)
			delayed = delayTimer.C
		case <-delayed:
			return 0
		case e := <-n.exit:
			if e.timeout == 0 {
				return e.code
			}
			sctx, scancel := context.WithTimeout(ctx, e.timeout)
			err := hs.Shutdown(sctx)
			scancel()
			n.log.Printf("Graceful shutdown completed with: %v", err)
			return e.code
		}
	}
}

// parseListenAddresses is --udp-listen-addresses: "" is every address, else
// distinct IP addresses in order.
func parseListenAddresses(s string) ([]string, error) {
	if s == "" {
		return []string{""}, nil
	}
	var addrs []string
	for _, a := range strings.Split(s, ",") {
		if _, err := netip.ParseAddr(a); err != nil {
			return nil, fmt.Errorf("parseAddress: invalid address %s", a)
		}
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	slices.Sort(addrs)
	return addrs, nil
}

// overrideHandler answers every request as if it were a GET of override.
func overrideHandler(next http.Handler, override string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		or, err := http.NewRequestWithContext(r.Context(), http.MethodGet, override, nil)
		if err != nil {
			http.Error(w, fmt.Sprintf("override request failed: %v", err), http.StatusInternalServerError)
			return
		}
		or.RemoteAddr = r.RemoteAddr
		or.Host = r.Host
		next.ServeHTTP(w, or)
	})
}

// mux routes netexec's endpoints; everything else is "/" (the time).
func (n *netexec) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n.log.Printf("GET /")
		fmt.Fprintf(w, "NOW: %v", n.env.Now())
	})
	mux.HandleFunc("/clientip", func(w http.ResponseWriter, r *http.Request) {
		n.log.Printf("GET /clientip")
		fmt.Fprint(w, r.RemoteAddr)
	})
	mux.HandleFunc("/serverport", func(w http.ResponseWriter, r *http.Request) {
		n.log.Printf("GET /serverport")
		fmt.Fprint(w, n.httpPort)
	})
	mux.HandleFunc("/header", n.header)
	mux.HandleFunc("/dial", n.dial)
	mux.HandleFunc("/echo", n.echo)
	mux.HandleFunc("/exit", n.exitHandler)
	mux.HandleFunc("/healthz", n.healthz)
	mux.HandleFunc("/readyz", n.readyz)
	mux.HandleFunc("/hostname", n.hostname("/hostname"))
	mux.HandleFunc("/hostName", n.hostname("/hostName"))
	mux.HandleFunc("/envvar", n.envvar)
	mux.HandleFunc("/redirect", n.redirect)
	mux.HandleFunc("/shell", n.shell)
	mux.HandleFunc("/upload", n.upload)
	mux.HandleFunc("/shutdown", func(w http.ResponseWriter, r *http.Request) {
		n.log.Printf("GET /shutdown")
		n.requestExit(netexecExit{code: 0})
	})
	return mux
}

func (n *netexec) requestExit(e netexecExit) {
	select {
	case n.exit <- e:
	default: // an exit is already on its way
	}
}

func (n *netexec) header(w http.ResponseWriter, r *http.Request) {
	if key := r.FormValue("key"); key != "" {
		n.log.Printf("GET /header?key=%s", key)
		fmt.Fprint(w, r.Header.Get(key))
		return
	}
	n.log.Printf("GET /header")
	data, err := json.Marshal(r.Header)
	if err != nil {
		fmt.Fprintf(w, "error marshalling header, err: %v", err)
		return
	}
	_, _ = w.Write(data)
}

func (n *netexec) echo(w http.ResponseWriter, r *http.Request) {
	msg, codeString := r.FormValue("msg"), r.FormValue("code")
	n.log.Printf("GET /echo?msg=%s&code=%s", msg, codeString)
	if codeString != "" {
		code, err := strconv.Atoi(codeString)
		if err != nil {
			fmt.Fprintf(w, "argument 'code' must be an integer or empty, got %q\n", codeString)
			return
		}
		w.WriteHeader(code)
	}
	fmt.Fprint(w, msg)
}

// exitHandler is /exit?code=&timeout=&wait=: after wait, exit with code, at once
// when timeout is 0, else after a graceful shutdown of at most timeout.
func (n *netexec) exitHandler(w http.ResponseWriter, r *http.Request) {
	waitString, timeoutString, codeString := r.FormValue("wait"), r.FormValue("timeout"), r.FormValue("code")
	n.log.Printf("GET /exit?code=%s&timeout=%s&wait=%s", codeString, timeoutString, waitString)
	var e netexecExit
	var wait time.Duration
	var err error
	if timeoutString != "" {
		if e.timeout, err = time.ParseDuration(timeoutString); err != nil {
			fmt.Fprintf(w, "argument 'timeout' must be a valid golang duration or empty, got %q\n", timeoutString)
			return
		}
	}
	if waitString != "" {
		if wait, err = time.ParseDuration(waitString); err != nil {
			fmt.Fprintf(w, "argument 'wait' must be a valid golang duration or empty, got %q\n", waitString)
			return
		}
	}
	if codeString != "" {
		if e.code, err = strconv.Atoi(codeString); err != nil {
			fmt.Fprintf(w, "argument 'code' must be an integer [0-127] or empty, got %q\n", codeString)
			return
		}
	}
	n.log.Printf("Will begin shutdown in %s, allowing %s for connections to close, then will exit with %d", wait, e.timeout, e.code)
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
	n.requestExit(e)
}

func (n *netexec) healthz(w http.ResponseWriter, r *http.Request) {
	n.log.Printf("GET /healthz")
	if n.ready.Load() {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusPreconditionFailed)
}

// readyz: 503 once SIGTERM came (leave the endpoints), else as /healthz with "ok".
func (n *netexec) readyz(w http.ResponseWriter, r *http.Request) {
	n.log.Printf("GET /readyz")
	select {
	case <-n.sigterm:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("shutting down"))
		return
	default:
	}
	if n.ready.Load() {
		_, _ = w.Write([]byte("ok"))
		return
	}
	w.WriteHeader(http.StatusPreconditionFailed)
}

func (n *netexec) hostname(route string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n.log.Printf("GET %s", route)
		host, err := n.env.Hostname()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, host)
	}
}

func (n *netexec) envvar(w http.ResponseWriter, r *http.Request) {
	name := r.FormValue("var")
	if name == "" {
		http.Error(w, "'var' query parameter is required", http.StatusBadRequest)
		return
	}
	n.log.Printf("GET /envvar?var=%s", name)
	val, ok := n.env.getenv(name)
	if !ok {
		http.Error(w, fmt.Sprintf("env var %q is not set", name), http.StatusInternalServerError)
		return
	}
	fmt.Fprint(w, val)
}

func (n *netexec) redirect(w http.ResponseWriter, r *http.Request) {
	location, codeString := r.FormValue("location"), r.FormValue("code")
	n.log.Printf("%s /redirect?msg=%s&code=%s", r.Method, location, codeString)
	code := http.StatusFound
	if codeString != "" {
		var err error
		if code, err = strconv.Atoi(codeString); err != nil {
			fmt.Fprintf(w, "argument 'code' must be an integer or empty, got %q\n", codeString)
			return
		}
	}
	http.Redirect(w, r, location, code)
}

// shell is /shell?cmd= (or shellCommand=): the command's combined output and
// error as JSON.
func (n *netexec) shell(w http.ResponseWriter, r *http.Request) {
	cmd := r.FormValue("shellCommand")
	if cmd == "" {
		cmd = r.FormValue("cmd")
	}
	n.log.Printf("GET /shell?cmd=%s", cmd)
	out, err := exec.CommandContext(r.Context(), n.env.Shell, "-c", cmd).CombinedOutput()
	result := map[string]string{}
	if len(out) > 0 {
		result["output"] = string(out)
	}
	if err != nil {
		result["error"] = err.Error()
	}
	n.log.Printf("Output: %s", result)
	writeJSON(w, result)
}

// upload is /upload: a multipart "file" saved under /uploads.
func (n *netexec) upload(w http.ResponseWriter, r *http.Request) {
	n.log.Printf("GET /upload")
	fail := func(msg string, err error) {
		n.log.Printf("%s: %v", msg, err)
		writeJSON(w, map[string]string{"error": msg})
	}
	file, _, err := r.FormFile("file")
	if err != nil {
		fail("Unable to upload file.", err)
		return
	}
	defer file.Close()
	f, err := os.CreateTemp(n.env.path("/uploads"), "upload")
	if err != nil {
		fail("Unable to open file for write", err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, file); err != nil {
		fail("Unable to write file.", err)
		return
	}
	if err := f.Chmod(0o700); err != nil {
		fail("Unable to chmod file.", err)
		return
	}
	n.log.Printf("Wrote upload to %s", f.Name())
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, map[string]string{"output": f.Name()})
}

// writeJSON writes v as JSON (an error: 417, as agnhost).
func writeJSON(w http.ResponseWriter, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, fmt.Sprintf("response could not be serialized. %v", err), http.StatusExpectationFailed)
		return
	}
	_, _ = w.Write(data)
}

// dial is /dial?request=&host=&port=&protocol=http|udp&tries=: it makes the
// request tries times and answers {"responses": [...], "errors": [...]}, with
// agnhost's quirk that responses are listed only when the last one is non-empty.
func (n *netexec) dial(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	host, port, request, protocol, triesString := q.Get("host"), q.Get("port"), q.Get("request"), q.Get("protocol"), q.Get("tries")
	n.log.Printf("GET /dial?host=%s&protocol=%s&port=%s&request=%s&tries=%s", host, protocol, port, request, triesString)
	tries := 1
	if triesString != "" {
		var err error
		if tries, err = strconv.Atoi(triesString); err != nil {
			http.Error(w, fmt.Sprintf("tries parameter is invalid. %v", err), http.StatusBadRequest)
			return
		}
	}
	if request == "" {
		http.Error(w, "request parameter not specified. <nil>", http.StatusBadRequest)
		return
	}
	hostPort := net.JoinHostPort(host, port)
	var dialer func(ctx context.Context, request string, addr net.Addr) (string, error)
	var addr net.Addr
	var err error
	switch strings.ToLower(protocol) {
	case "", "http":
		dialer = dialHTTP
		addr, err = net.ResolveTCPAddr("tcp", hostPort)
	case "udp":
		dialer = dialUDP
		addr, err = net.ResolveUDPAddr("udp", hostPort)
	case "sctp":
		http.Error(w, "unsupported protocol. sctp is not supported by kubesvc's built-in agnhost", http.StatusBadRequest)
		return
	default:
		http.Error(w, fmt.Sprintf("unsupported protocol. %s", protocol), http.StatusBadRequest)
		return
	}
	if err != nil {
		http.Error(w, fmt.Sprintf("host and/or port param are invalid. %v", err), http.StatusBadRequest)
		return
	}
	responses, errs := []string{}, []string{}
	var last string
	for range tries {
		last, err = dialer(r.Context(), request, addr)
		if err != nil {
			errs = append(errs, err.Error())
		} else {
			responses = append(responses, last)
		}
	}
	out := map[string][]string{}
	if last != "" {
		out["responses"] = responses
	}
	if len(errs) > 0 {
		out["errors"] = errs
	}
	writeJSON(w, out)
}

// dialHTTP gets http://ADDR/REQUEST and returns the body.
func dialHTTP(ctx context.Context, request string, addr net.Addr) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, netexecDialTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/%s", addr, request), nil)
	if err != nil {
		return "", err
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	return string(body), nil
}

// dialUDP sends request in one datagram and returns the answer.
func dialUDP(ctx context.Context, request string, addr net.Addr) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr.String())
	if err != nil {
		return "", fmt.Errorf("udp dial failed. err:%v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(request)); err != nil {
		return "", fmt.Errorf("udp connection write failed. err:%v", err)
	}
	deadline := time.Now().Add(netexecDialTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetReadDeadline(deadline)
	buf := make([]byte, 2048)
	count, err := conn.Read(buf)
	if err != nil || count == 0 {
		return "", fmt.Errorf("reading from udp connection failed. err:'%v'", err)
	}
	return string(buf[:count]), nil
}

// serveUDP answers netexec's UDP commands on pc until it is closed.
func (n *netexec) serveUDP(ctx context.Context, pc net.PacketConn, fatal chan<- error) {
	defer func() {
		n.log.Printf("UDP server exited")
		n.ready.Store(false)
	}()
	buf := make([]byte, 2048)
	for {
		count, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() == nil {
				select {
				case fatal <- fmt.Errorf("Error occurred: failed accepting UDP connections:%w", err):
				default:
				}
			}
			return
		}
		answer, ok := n.udpAnswer(string(buf[:count]), from)
		if !ok {
			continue
		}
		if _, err := pc.WriteTo([]byte(answer), from); err != nil {
			n.log.Printf("failed to write to UDP client %s: %v", from, err)
		}
	}
}

// udpAnswer is the answer to one UDP command; ok is false for an unknown one
// (no answer). Commands are case-insensitive, and echo answers in lower case, as
// agnhost's do.
func (n *netexec) udpAnswer(raw string, from net.Addr) (answer string, ok bool) {
	raw = strings.TrimSpace(raw)
	text := strings.ToLower(raw)
	switch {
	case text == "hostname":
		n.log.Println("Sending udp hostName response")
		host, err := n.env.Hostname()
		if err != nil {
			n.log.Printf("failed to get hostname: %v", err)
			return "", false
		}
		return host, true
	case strings.HasPrefix(text, "envvar "):
		_, name, _ := strings.Cut(raw, " ")
		name = strings.TrimSpace(name)
		n.log.Printf("Sending UDP envvar response for %s", name)
		val, _ := n.env.getenv(name)
		return val, true
	case strings.HasPrefix(text, "echo "):
		_, msg, _ := strings.Cut(text, " ")
		n.log.Printf("Echoing %v to UDP client %s\n", msg, from)
		return msg, true
	case text == "clientip":
		n.log.Printf("Sending clientip back to UDP client %s\n", from)
		return from.String(), true
	case text == "serverport":
		n.log.Printf("Sending server port to UDP client %d\n", n.udpPort)
		return strconv.Itoa(n.udpPort), true
	case text != "":
		n.log.Printf("Unknown UDP command received from %s: %v\n", from, text)
	}
	return "", false
}
