package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
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

// Txn is extra work that must commit atomically with an object's write: compares
// that must all hold (e.g. "this IPAddress key is absent") and operations to run (e.g.
// create the IPAddress object). OnResult, if set, is told whether the write committed
// (false also after a failed or abandoned attempt).
type Txn struct {
	Cmps     []clientv3.Cmp
	Ops      []clientv3.Op
	OnResult func(committed bool)
}

// Abandon ends a transaction that will not be attempted (nil-safe).
func (t *Txn) Abandon() { t.done(false) }

func (t *Txn) done(committed bool) {
	if t != nil && t.OnResult != nil {
		t.OnResult(committed)
	}
}

// Create stores obj at key if the key is absent, and returns it with its new
// resourceVersion. If extra is set, its compares must hold too and its operations
// commit in the same transaction; when only they fail, the error has code
// CodeExtraConflict.
func (s *Store) Create(ctx context.Context, key string, obj runtime.Object, extra *Txn) (out runtime.Object, err error) {
	committed := false
	defer func() { extra.done(committed) }()
	data, err := s.Encode(obj)
	if err != nil {
		return nil, err
	}
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", 0)}
	ops := []clientv3.Op{clientv3.OpPut(key, string(data))}
	if extra != nil {
		cmps = append(cmps, extra.Cmps...)
		ops = append(ops, extra.Ops...)
	}
	resp, err := s.client.Txn(ctx).If(cmps...).Then(ops...).Else(clientv3.OpGet(key, clientv3.WithCountOnly())).Commit()
	if err != nil {
		return nil, fmt.Errorf("etcd create %s: %w", key, err)
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().Count > 0 {
			return nil, &Error{Code: CodeExists, Key: key}
		}
		return nil, &Error{Code: CodeExtraConflict, Key: key}
	}
	committed = true
	out = obj.DeepCopyObject()
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

// TxnUpdateFunc is an UpdateFunc that may add work to the write's transaction.
type TxnUpdateFunc func(cur runtime.Object) (runtime.Object, *Txn, error)

// GuaranteedUpdate reads key, applies tryUpdate and writes the result with
// compare-and-swap on the version read, retrying on a concurrent change. tryUpdate must
// itself check a caller-supplied resourceVersion (and return a Conflict) when the
// caller asked for one. If the update yields bytes equal to the stored ones, nothing is
// written and the current object is returned.
func (s *Store) GuaranteedUpdate(ctx context.Context, key string, tryUpdate UpdateFunc) (runtime.Object, error) {
	return s.GuaranteedUpdateTxn(ctx, key, func(cur runtime.Object) (runtime.Object, *Txn, error) {
		next, err := tryUpdate(cur)
		return next, nil, err
	})
}

// GuaranteedUpdateTxn is GuaranteedUpdate whose tryUpdate may return extra work for the
// same transaction. When only the extra compares fail, the error has code
// CodeExtraConflict (the object itself is retried on a concurrent change).
func (s *Store) GuaranteedUpdateTxn(ctx context.Context, key string, tryUpdate TxnUpdateFunc) (runtime.Object, error) {
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
		next, extra, err := tryUpdate(cur.DeepCopyObject())
		if err != nil {
			extra.done(false)
			return nil, err
		}
		if next == nil {
			extra.done(false)
			return cur, nil
		}
		data, err := s.Encode(next)
		if err != nil {
			extra.done(false)
			return nil, err
		}
		if bytes.Equal(data, kv.Value) && (extra == nil || len(extra.Ops) == 0) {
			extra.done(false)
			return cur, nil
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)}
		ops := []clientv3.Op{clientv3.OpPut(key, string(data))}
		if extra != nil {
			cmps = append(cmps, extra.Cmps...)
			ops = append(ops, extra.Ops...)
		}
		tresp, err := s.client.Txn(ctx).If(cmps...).Then(ops...).Else(clientv3.OpGet(key)).Commit()
		if err != nil {
			extra.done(false)
			return nil, fmt.Errorf("etcd update %s: %w", key, err)
		}
		if tresp.Succeeded {
			extra.done(true)
			setRV(next, tresp.Header.Revision)
			return next, nil
		}
		extra.done(false)
		if rr := tresp.Responses[0].GetResponseRange(); len(rr.Kvs) > 0 && rr.Kvs[0].ModRevision == kv.ModRevision {
			return nil, &Error{Code: CodeExtraConflict, Key: key}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// Delete removes key. precondition, if set, sees the current object and may refuse.
// It returns the object as it was, with the resourceVersion of the deletion.
func (s *Store) Delete(ctx context.Context, key string, precondition func(cur runtime.Object) error) (runtime.Object, error) {
	return s.DeleteTxn(ctx, key, precondition, nil)
}

// DeleteTxn is Delete with release work (e.g. deleting the objects that record what
// the object held) computed from the object being deleted and committed with it.
func (s *Store) DeleteTxn(ctx context.Context, key string, precondition func(cur runtime.Object) error, release func(cur runtime.Object) []clientv3.Op) (runtime.Object, error) {
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
		ops := []clientv3.Op{clientv3.OpDelete(key)}
		if release != nil {
			ops = append(ops, release(cur)...)
		}
		tresp, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(ops...).Commit()
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
		if errors.Is(err, rpctypes.ErrCompacted) {
			return nil, 0, "", &Error{Code: CodeExpired, Key: prefix,
				Msg: fmt.Sprintf("revision %d has been compacted", rev)}
		}
		return nil, 0, "", fmt.Errorf("etcd list %s: %w", prefix, err)
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
