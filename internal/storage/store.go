package storage

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubesvc/kubesvc/internal/scheme"
)

// Store reads and writes API objects in etcd. Objects are stored as Kubernetes protobuf
// ("k8s\x00" + runtime.Unknown) with an empty resourceVersion; the version is the key's
// etcd mod_revision and is filled in on every read.
type Store struct {
	client *clientv3.Client
	codecs *scheme.Codecs
}

// NewStore returns a Store on client.
func NewStore(client *clientv3.Client, codecs *scheme.Codecs) *Store {
	return &Store{client: client, codecs: codecs}
}

// Client is the underlying etcd client, for transactions that span several keys.
func (s *Store) Client() *clientv3.Client { return s.client }

// Encode serialises obj for etcd (its resourceVersion is not stored).
func (s *Store) Encode(obj runtime.Object) ([]byte, error) {
	if err := s.codecs.SetGVK(obj); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	rv := acc.GetResourceVersion()
	acc.SetResourceVersion("")
	defer acc.SetResourceVersion(rv)
	var buf bytes.Buffer
	if err := s.codecs.Protobuf.Encode(obj, &buf); err != nil {
		return nil, fmt.Errorf("encode %T: %w", obj, err)
	}
	return buf.Bytes(), nil
}

// Decode parses an etcd value and sets its resourceVersion to rev.
func (s *Store) Decode(data []byte, rev int64) (runtime.Object, error) {
	obj, _, err := s.codecs.Protobuf.Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	acc.SetResourceVersion(strconv.FormatInt(rev, 10))
	return obj, nil
}

// Create stores obj at key if the key is absent, and returns it with its new
// resourceVersion. extra operations, if any, commit in the same transaction.
func (s *Store) Create(ctx context.Context, key string, obj runtime.Object, extra ...clientv3.Op) (runtime.Object, error) {
	data, err := s.Encode(obj)
	if err != nil {
		return nil, err
	}
	ops := append([]clientv3.Op{clientv3.OpPut(key, string(data))}, extra...)
	resp, err := s.client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("etcd create %s: %w", key, err)
	}
	if !resp.Succeeded {
		return nil, &Error{Code: CodeExists, Key: key}
	}
	out := obj.DeepCopyObject()
	setRV(out, resp.Header.Revision)
	return out, nil
}

// Get returns the object at key with its current resourceVersion.
func (s *Store) Get(ctx context.Context, key string) (runtime.Object, error) {
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("etcd get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, &Error{Code: CodeNotFound, Key: key}
	}
	return s.Decode(resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
}

// UpdateFunc computes the new state from the current one. cur is a private copy that
// may be modified and returned. Returning (nil, nil) means "no change"; an error aborts.
type UpdateFunc func(cur runtime.Object) (runtime.Object, error)

// GuaranteedUpdate reads key, applies tryUpdate and writes the result with
// compare-and-swap on the version read, retrying on a concurrent change. tryUpdate must
// itself check a caller-supplied resourceVersion (and return a Conflict) when the
// caller asked for one. If the update yields bytes equal to the stored ones, nothing is
// written and the current object is returned.
func (s *Store) GuaranteedUpdate(ctx context.Context, key string, tryUpdate UpdateFunc) (runtime.Object, error) {
	for attempt := 0; ; attempt++ {
		resp, err := s.client.Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("etcd get %s: %w", key, err)
		}
		if len(resp.Kvs) == 0 {
			return nil, &Error{Code: CodeNotFound, Key: key}
		}
		kv := resp.Kvs[0]
		cur, err := s.Decode(kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		next, err := tryUpdate(cur.DeepCopyObject())
		if err != nil {
			return nil, err
		}
		if next == nil {
			return cur, nil
		}
		data, err := s.Encode(next)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(data, kv.Value) {
			return cur, nil
		}
		tresp, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpPut(key, string(data))).Commit()
		if err != nil {
			return nil, fmt.Errorf("etcd update %s: %w", key, err)
		}
		if tresp.Succeeded {
			setRV(next, tresp.Header.Revision)
			return next, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// Delete removes key. precondition, if set, sees the current object and may refuse.
// It returns the object as it was, with the resourceVersion of the deletion.
func (s *Store) Delete(ctx context.Context, key string, precondition func(cur runtime.Object) error) (runtime.Object, error) {
	for {
		resp, err := s.client.Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("etcd get %s: %w", key, err)
		}
		if len(resp.Kvs) == 0 {
			return nil, &Error{Code: CodeNotFound, Key: key}
		}
		kv := resp.Kvs[0]
		cur, err := s.Decode(kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		if precondition != nil {
			if err := precondition(cur); err != nil {
				return nil, err
			}
		}
		tresp, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpDelete(key)).Commit()
		if err != nil {
			return nil, fmt.Errorf("etcd delete %s: %w", key, err)
		}
		if tresp.Succeeded {
			setRV(cur, tresp.Header.Revision)
			return cur, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// ListPage reads up to limit objects (0: all) with keys in [start, end of prefix) at
// revision rev (0: current). It returns the objects, the revision read, and the key
// after the last one returned when more remain ("" otherwise).
func (s *Store) ListPage(ctx context.Context, prefix, start string, rev int64, limit int64) ([]runtime.Object, int64, string, error) {
	if start == "" {
		start = prefix
	}
	opts := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix))}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(limit))
	}
	resp, err := s.client.Get(ctx, start, opts...)
	if err != nil {
		return nil, 0, "", err
	}
	out := make([]runtime.Object, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		obj, err := s.Decode(kv.Value, kv.ModRevision)
		if err != nil {
			return nil, 0, "", fmt.Errorf("%s: %w", kv.Key, err)
		}
		out = append(out, obj)
	}
	next := ""
	if resp.More && len(resp.Kvs) > 0 {
		next = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	return out, resp.Header.Revision, next, nil
}

// CurrentRevision returns etcd's current revision with one cheap read.
func (s *Store) CurrentRevision(ctx context.Context) (int64, error) {
	resp, err := s.client.Get(ctx, "/registry/health", clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("etcd revision: %w", err)
	}
	return resp.Header.Revision, nil
}

func setRV(obj runtime.Object, rev int64) {
	if acc, err := meta.Accessor(obj); err == nil {
		acc.SetResourceVersion(strconv.FormatInt(rev, 10))
	}
}
