package images

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// nettestState is nettest's state, served as JSON on /read.
type nettestState struct {
	mu sync.Mutex
	// Hostname is set once.
	Hostname             string
	Sent                 map[string]int
	Received             map[string]int
	Errors               []string
	Log                  []string
	StillContactingPeers bool
}

// nettestWrite is the body of a POST to /write.
type nettestWrite struct {
	Source string
	Dest   string
}

// nettestWriteResponse is /write's answer.
type nettestWriteResponse struct {
	Hostname string
}

// peerSource lists the peers' URLs (http://IP:PORT).
type peerSource func(ctx context.Context) ([]string, error)

// runNettest is `agnhost nettest [--port 8080] [--peers 8] [--service nettest]
// [--namespace default] [--delay-shutdown 0]`: a web server that other pods report
// to (/write, and /read, /status, /quit), and that reports to every endpoint of the
// service, found through the API (in-cluster configuration). /quit exits 0 at once
// and, as agnhost's os.Exit does, leaves the request unanswered. Where the real one
// exits when the pod has no API credentials, this one records the error and goes on
// serving (its /status then says "fail"), since the pre-stop test needs only
// /write and /read.
func runNettest(ctx context.Context, env Env, args []string) int {
	fs := agnhostFlags(env, "nettest")
	port := fs.Int("port", 8080, "Port number to serve at.")
	peerCount := fs.Int("peers", 8, "Must find at least this many peers for the test to pass.")
	service := fs.String("service", "nettest", "Service to find other network test pods in.")
	namespace := fs.String("namespace", "default", "Namespace of this pod. TODO: kubernetes should make this discoverable.")
	delayShutdown := fs.Int("delay-shutdown", 0, "Number of seconds to delay shutdown when receiving SIGTERM.")
	if !parseAgnhostFlags(env, fs, args, 0, 0) {
		return 1
	}
	logger := env.logger()
	if *service == "" {
		logger.Print("Must provide -service flag.")
		return 1
	}
	hostname, err := env.Hostname()
	if err != nil {
		logger.Printf("Error getting hostname: %v", err)
		return 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var sigs <-chan os.Signal
	if *delayShutdown > 0 {
		c, stop := env.Notify(syscall.SIGTERM)
		defer stop()
		sigs = c
	}
	state := &nettestState{Hostname: hostname, StillContactingPeers: true}
	ln, err := env.Listen(ctx, "tcp", fmt.Sprintf(":%d", *port))
	if err != nil {
		logger.Print(err)
		return 1
	}
	quit := make(chan struct{}, 1)
	hs := &http.Server{Handler: state.mux(*peerCount, quit), ReadHeaderTimeout: time.Minute}
	defer hs.Close()
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	go state.contactOthers(ctx, inClusterPeers(*namespace, *service), *peerCount, *namespace+"/"+*service, 5*time.Second, 5*time.Minute)

	select {
	case <-ctx.Done():
		return 0
	case <-quit:
		return 0
	case err := <-serveErr:
		logger.Print(err)
		return 1
	case <-sigs:
		logger.Printf("Sleeping %d seconds before exit ...", *delayShutdown)
	}
	t := time.NewTimer(time.Duration(*delayShutdown) * time.Second)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return 0
}

// mux routes /read, /write, /status and /quit.
func (s *nettestState) mux(peerCount int, quit chan<- struct{}) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/quit", func(w http.ResponseWriter, _ *http.Request) {
		// agnhost's handler is os.Exit(0): the client never gets an answer, only
		// a closed connection. The connection is closed before the exit is asked
		// for, so that this holds every time, rather than the answer racing the
		// server's Close (a client that had sent /quit on a keep-alive connection
		// then retried it on a new one, and met a closed listener).
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		select {
		case quit <- struct{}{}:
		default:
		}
		if err != nil {
			panic(http.ErrAbortHandler) // not hijackable (HTTP/2): end the stream unanswered
		}
	})
	mux.HandleFunc("/read", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		b, err := json.MarshalIndent(s, "", "\t")
		s.appendErr(err)
		_, err = w.Write(b)
		s.appendErr(err)
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		var wp nettestWrite
		s.appendErr(json.NewDecoder(r.Body).Decode(&wp))
		if wp.Source == "" {
			s.appendErr(fmt.Errorf("%v: Got request with no source", s.Hostname))
		} else {
			if s.Received == nil {
				s.Received = map[string]int{}
			}
			s.Received[wp.Source]++
		}
		s.appendErr(json.NewEncoder(w).Encode(&nettestWriteResponse{Hostname: s.Hostname}))
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case len(s.Sent) >= peerCount && len(s.Received) >= peerCount:
			fmt.Fprint(w, "pass")
		case s.StillContactingPeers:
			fmt.Fprint(w, "running")
		default:
			s.logf("Declaring failure with %d sent and %d received and %d peers", len(s.Sent), len(s.Received), peerCount)
			fmt.Fprint(w, "fail")
		}
	})
	return mux
}

// appendErr records err, if any. s.mu is held.
func (s *nettestState) appendErr(err error) {
	if err != nil {
		s.Errors = append(s.Errors, err.Error())
	}
}

// logf adds a message to the log, keeping the last 500. s.mu is held.
func (s *nettestState) logf(format string, args ...any) {
	s.Log = append(s.Log, fmt.Sprintf(format, args...))
	if len(s.Log) > 500 {
		s.Log = s.Log[1:]
	}
}

// Logf adds a message to the log. s.mu is not held.
func (s *nettestState) Logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logf(format, args...)
}

// contactOthers waits (up to timeout) until the service has peerCount endpoints,
// then posts to every endpoint's /write 15 times, every sleep.
func (s *nettestState) contactOthers(ctx context.Context, peers peerSource, peerCount int, service string, sleep, timeout time.Duration) {
	defer func() {
		s.mu.Lock()
		s.StillContactingPeers = false
		s.mu.Unlock()
	}()
	wait := func() bool {
		t := time.NewTimer(sleep)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		eps, err := peers(ctx)
		if err != nil {
			s.Logf("Unable to read the endpoints for %s: %v.", service, err)
		}
		if len(eps) >= peerCount || !time.Now().Before(deadline) {
			break
		}
		if err == nil {
			s.Logf("%s has %d endpoints (%v), which is less than %d as expected. Waiting for all endpoints to come up.", service, len(eps), eps, peerCount)
		}
		if !wait() {
			return
		}
	}
	for range 15 {
		eps, _ := peers(ctx)
		for _, ep := range eps {
			s.Logf("Attempting to contact %s", ep)
			s.contactSingle(ctx, ep)
		}
		if !wait() {
			return
		}
	}
}

// contactSingle posts this pod's name to ep's /write and counts the answer.
func (s *nettestState) contactSingle(ctx context.Context, ep string) {
	body, err := json.Marshal(&nettestWrite{Dest: ep, Source: s.Hostname})
	if err != nil {
		s.Logf("Warning: %v", err)
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep+"/write", bytes.NewReader(body))
	if err != nil {
		s.Logf("Warning: unable to contact the endpoint %q: %v", ep, err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.Logf("Warning: unable to contact the endpoint %q: %v", ep, err)
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.Logf("Warning: unable to read response from '%v': '%v'", ep, err)
		return
	}
	var wr nettestWriteResponse
	if err := json.Unmarshal(data, &wr); err != nil {
		s.Logf("Warning: unable to unmarshal response (%v) from '%v': '%v'", string(data), ep, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Sent == nil {
		s.Sent = map[string]int{}
	}
	s.Sent[wr.Hostname]++
}

// Where a pod finds its in-cluster API access (what client-go's
// rest.InClusterConfig reads): the Service environment of the kubernetes Service
// and the mounted service account token and CA.
const (
	serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	errNotInCluster   = "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"
)

// inClusterAPI is a pod's access to the API server: base URL, bearer token file
// and the CA that signs the server's certificate.
type inClusterAPI struct {
	base      string
	tokenFile string
	caFile    string
}

// inClusterFromEnv is the pod's in-cluster API access, from getenv (os.Getenv)
// and the service account files under dir.
func inClusterFromEnv(getenv func(string) string, dir string) (inClusterAPI, error) {
	host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return inClusterAPI{}, errors.New(errNotInCluster)
	}
	return inClusterAPI{
		base:      "https://" + net.JoinHostPort(host, port),
		tokenFile: filepath.Join(dir, "token"),
		caFile:    filepath.Join(dir, "ca.crt"),
	}, nil
}

// client is an HTTPS client that trusts only the service account's CA.
func (a inClusterAPI) client() (*http.Client, error) {
	ca, err := os.ReadFile(a.caFile)
	if err != nil {
		return nil, fmt.Errorf("service account CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("service account CA %s: no PEM certificate", a.caFile)
	}
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}, nil
}

// v1Endpoints is the part of a v1 Endpoints object that nettest reads.
type v1Endpoints struct {
	Subsets []struct {
		Addresses []struct {
			IP string `json:"ip"`
		} `json:"addresses"`
		Ports []struct {
			Port int32 `json:"port"`
		} `json:"ports"`
	} `json:"subsets"`
}

// getEndpoints reads namespace/name's v1 Endpoints. The token is read on each
// call, as client-go rereads a rotated one.
func (a inClusterAPI) getEndpoints(ctx context.Context, c *http.Client, namespace, name string) (*v1Endpoints, error) {
	token, err := os.ReadFile(a.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("service account token: %w", err)
	}
	u := a.base + "/api/v1/namespaces/" + url.PathEscape(namespace) + "/endpoints/" + url.PathEscape(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("User-Agent", "agnhost-nettest (kubesvc)")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		// The API's Status says why (not found, forbidden ...).
		var st struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &st) == nil && st.Message != "" {
			return nil, errors.New(st.Message)
		}
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var ep v1Endpoints
	if err := json.Unmarshal(body, &ep); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", u, err)
	}
	return &ep, nil
}

// inClusterPeers lists the service's endpoints through the API, with the pod's
// in-cluster configuration (service account token, KUBERNETES_SERVICE_HOST). It
// speaks plain HTTPS rather than through client-go so that the small image
// runner (cmd/kubesvc-runner) that starts built-in images does not link the
// API's types.
func inClusterPeers(namespace, service string) peerSource {
	return apiPeers(func() (inClusterAPI, error) { return inClusterFromEnv(os.Getenv, serviceAccountDir) }, namespace, service)
}

// apiPeers lists the service's endpoints through the API that access returns.
func apiPeers(access func() (inClusterAPI, error), namespace, service string) peerSource {
	var (
		once   sync.Once
		api    inClusterAPI
		client *http.Client
		cerr   error
	)
	return func(ctx context.Context) ([]string, error) {
		once.Do(func() {
			if api, cerr = access(); cerr == nil {
				client, cerr = api.client()
			}
		})
		if cerr != nil {
			return nil, fmt.Errorf("no in-cluster API access: %w", cerr)
		}
		ep, err := api.getEndpoints(ctx, client, namespace, service)
		if err != nil {
			return nil, err
		}
		var urls []string
		for _, ss := range ep.Subsets {
			for _, a := range ss.Addresses {
				for _, p := range ss.Ports {
					u := "http://" + net.JoinHostPort(a.IP, fmt.Sprint(p.Port))
					if !slices.Contains(urls, u) {
						urls = append(urls, u)
					}
				}
			}
		}
		slices.Sort(urls)
		return urls, nil
	}
}
