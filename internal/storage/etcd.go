package storage

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"
)

// Backend is a connected etcd: either an embedded member or an external cluster.
type Backend struct {
	Client *clientv3.Client
	etcd   *embed.Etcd
}

// EmbeddedConfig configures the in-process etcd member.
type EmbeddedConfig struct {
	// DataDir holds the member's data (created if absent).
	DataDir string
	// Logger receives etcd's own logs; nil silences them.
	Logger *zap.Logger
}

// StartEmbedded starts a single-member etcd in this process and returns a client that
// talks to it without a network hop. The member listens only on loopback, on ports the
// kernel chooses, so several servers on one machine never clash. It blocks until the
// member is ready or ctx ends.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Backend, error) {
	ec := embed.NewConfig()
	ec.Name = "kubesvc"
	ec.Dir = filepath.Clean(cfg.DataDir)
	// Port 0: nothing dials these listeners (the client below is in-process), and the
	// single member's peer URL never has to be reached by anyone.
	u, _ := url.Parse("http://127.0.0.1:0")
	ec.ListenPeerUrls = []url.URL{*u}
	ec.AdvertisePeerUrls = []url.URL{*u}
	ec.ListenClientUrls = []url.URL{*u}
	ec.AdvertiseClientUrls = []url.URL{*u}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	// Kubernetes compacts every five minutes; watchers older than that get 410 Expired.
	ec.AutoCompactionMode = embed.CompactorModePeriodic
	ec.AutoCompactionRetention = "5m"
	ec.QuotaBackendBytes = 8 << 30
	// A single member elects itself after 1-10 election timeouts; etcd's defaults
	// (100 ms ticks, 1 s elections) make a start wait up to a second for nothing.
	ec.TickMs, ec.ElectionMs = 20, 100
	ec.LogLevel = "error"
	// etcd logs expected shutdown errors at error level; stay quiet unless asked.
	logger := cfg.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(logger)
	// One deadline for both phases: StartEtcd itself can block for good (bbolt waits
	// without a timeout for its file lock when another process has the database open).
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	type started struct {
		e   *embed.Etcd
		err error
	}
	startc := make(chan started, 1)
	go func() {
		e, err := embed.StartEtcd(ec)
		startc <- started{e, err}
	}()
	// abandon leaves StartEtcd running (it cannot be interrupted) and closes the
	// member if it ever starts, so that ctx and the deadline are honoured at once.
	abandon := func() {
		go func() {
			if r := <-startc; r.err == nil {
				r.e.Close()
			}
		}()
	}
	var e *embed.Etcd
	select {
	case r := <-startc:
		if r.err != nil {
			return nil, fmt.Errorf("could not start embedded etcd in %s: %w", ec.Dir, r.err)
		}
		e = r.e
	case <-timeout.C:
		abandon()
		return nil, fmt.Errorf("embedded etcd in %s did not open its database within 60s (is another etcd using it?)", ec.Dir)
	case <-ctx.Done():
		abandon()
		return nil, fmt.Errorf("embedded etcd in %s: %w", ec.Dir, ctx.Err())
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd failed: %w", err)
	case <-timeout.C:
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s was not ready within 60s", ec.Dir)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", ctx.Err())
	}
	return &Backend{Client: v3client.New(e.Server), etcd: e}, nil
}

// ConnectExternal connects to an existing etcd cluster.
func ConnectExternal(ctx context.Context, endpoints []string) (*Backend, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 10 * time.Second,
		Context:     ctx,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("could not connect to etcd %v: %w", endpoints, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Get(cctx, "/registry/health", clientv3.WithCountOnly()); err != nil {
		c.Close()
		return nil, fmt.Errorf("etcd %v is not answering: %w", endpoints, err)
	}
	return &Backend{Client: c}, nil
}

// Close closes the client and stops the embedded member, if any.
func (b *Backend) Close() {
	b.Client.Close()
	if b.etcd != nil {
		b.etcd.Close()
	}
}

// Check reports whether etcd answers a read.
func (b *Backend) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := b.Client.Get(ctx, "/registry/health", clientv3.WithCountOnly()); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	return nil
}
