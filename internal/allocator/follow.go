package allocator

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// KeyFollower mirrors which keys exist under an etcd prefix and reports them by the
// key's last path segment (an IP or a port number). It reads only keys, never values.
type KeyFollower struct {
	Client *clientv3.Client
	Prefix string
	// Reset is called with every present name after each (re)load; Changed for each
	// later change.
	Reset   func(names []string)
	Changed func(name string, present bool)
	Log     *slog.Logger

	once  sync.Once
	ready chan struct{}
}

func (f *KeyFollower) readyCh() chan struct{} {
	f.once.Do(func() { f.ready = make(chan struct{}) })
	return f.ready
}

// Ready is closed after the first load.
func (f *KeyFollower) Ready() <-chan struct{} { return f.readyCh() }

// Run follows the prefix until ctx ends, reloading after any lost watch.
func (f *KeyFollower) Run(ctx context.Context) {
	ready := f.readyCh()
	first := true
	for ctx.Err() == nil {
		err := f.runOnce(ctx, func() {
			if first {
				close(ready)
				first = false
			}
		})
		if err != nil && ctx.Err() == nil {
			f.Log.Error("allocator: following etcd failed; reloading", "prefix", f.Prefix, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (f *KeyFollower) runOnce(ctx context.Context, loaded func()) error {
	resp, err := f.Client.Get(ctx, f.Prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return fmt.Errorf("list %s: %w", f.Prefix, err)
	}
	names := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		names = append(names, f.name(string(kv.Key)))
	}
	f.Reset(names)
	loaded()
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range f.Client.Watch(wctx, f.Prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("watch %s: %w", f.Prefix, err)
		}
		for _, ev := range wr.Events {
			f.Changed(f.name(string(ev.Kv.Key)), ev.Type == mvccpb.PUT)
		}
	}
	return fmt.Errorf("watch %s closed", f.Prefix)
}

func (f *KeyFollower) name(key string) string {
	return strings.TrimPrefix(key, f.Prefix)
}
