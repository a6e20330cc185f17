package apiserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubesvc/kubesvc/internal/storage"
)

// continueToken is the opaque metadata.continue value (the same shape as Kubernetes').
type continueToken struct {
	APIVersion      string `json:"v"`
	ResourceVersion int64  `json:"rv"`
	StartKey        string `json:"start"`
}

func encodeContinue(rev int64, next, prefix string) string {
	b, _ := json.Marshal(continueToken{APIVersion: "meta.k8s.io/v1", ResourceVersion: rev, StartKey: strings.TrimPrefix(next, prefix)})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s, prefix string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, "", badRequest("continue key is not valid: %v", err)
	}
	var t continueToken
	if err := json.Unmarshal(b, &t); err != nil || t.APIVersion != "meta.k8s.io/v1" || t.ResourceVersion <= 0 {
		return 0, "", badRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
	}
	if strings.Contains(t.StartKey, "..") || strings.HasPrefix(t.StartKey, "/") {
		return 0, "", badRequest("continue key is not valid: %s", t.StartKey)
	}
	return t.ResourceVersion, prefix + t.StartKey, nil
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo) {
	objs, lm, err := s.list(r.Context(), r, h, ri.Namespace)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if h.res.FromStorage != nil {
		for i := range objs {
			objs[i] = h.res.Served(objs[i])
		}
	}
	switch negotiate(r).Kind {
	case outputTable:
		t, err := s.toTable(r, h, objs, lm)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeObject(w, r, http.StatusOK, t)
	case outputPartial:
		pl := &metav1.PartialObjectMetadataList{ListMeta: lm}
		pl.TypeMeta = metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadataList"}
		for _, o := range objs {
			pl.Items = append(pl.Items, *toPartial(o))
		}
		s.writeObject(w, r, http.StatusOK, pl)
	default:
		list := h.res.NewList()
		if err := setList(list, objs, lm); err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeObject(w, r, http.StatusOK, list)
	}
}

// list returns the matching objects and the list metadata. Without limit, or with
// resourceVersion=0, the watch cache answers (after catching up with etcd unless
// resourceVersion=0 allows a possibly older view). Paged lists read etcd at one
// revision, so that every page comes from the same snapshot.
func (s *Server) list(ctx context.Context, r *http.Request, h *resourceHandler, namespace string) ([]runtime.Object, metav1.ListMeta, error) {
	opts, err := parseListOptions(r.URL.Query())
	if err != nil {
		return nil, metav1.ListMeta{}, err
	}
	f, err := s.parseFilter(opts, h)
	if err != nil {
		return nil, metav1.ListMeta{}, err
	}
	limit := max(opts.Limit, 0)
	rv := opts.ResourceVersion
	cont := opts.Continue
	prefix := h.res.ListPrefix(namespace)
	gr := h.res.GroupResource()

	if cont == "" && (limit == 0 || rv == "0") {
		if rv != "0" && rv != "" {
			n, err := strconv.ParseInt(rv, 10, 64)
			if err != nil {
				return nil, metav1.ListMeta{}, apierrors.NewBadRequest("invalid resource version: " + rv)
			}
			if err := s.cache.WaitFor(ctx, n); err != nil {
				return nil, metav1.ListMeta{}, toAPIError(err, gr, "")
			}
		} else if rv == "" {
			if _, err := s.cache.WaitFresh(ctx); err != nil {
				return nil, metav1.ListMeta{}, toAPIError(err, gr, "")
			}
		}
		all, rev := s.cache.List(prefix)
		out := all[:0:0]
		for _, o := range all {
			if f.matches(o) {
				out = append(out, o)
			}
		}
		return out, metav1.ListMeta{ResourceVersion: strconv.FormatInt(rev, 10)}, nil
	}

	var rev int64
	start := ""
	if cont != "" {
		if rev, start, err = decodeContinue(cont, prefix); err != nil {
			return nil, metav1.ListMeta{}, err
		}
	} else if rv != "" {
		if rev, err = strconv.ParseInt(rv, 10, 64); err != nil {
			return nil, metav1.ListMeta{}, apierrors.NewBadRequest("invalid resource version: " + rv)
		}
		if opts.ResourceVersionMatch != metav1.ResourceVersionMatchExact {
			rev = 0
		}
	}
	var out []runtime.Object
	for {
		want := limit - int64(len(out))
		objs, readRev, next, err := s.store.ListPage(ctx, prefix, start, rev, want)
		if err != nil {
			if storage.IsExpired(err) {
				if cont != "" {
					return nil, metav1.ListMeta{}, apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
				}
				return nil, metav1.ListMeta{}, apierrors.NewResourceExpired("too old resource version: " + rv)
			}
			return nil, metav1.ListMeta{}, toAPIError(err, gr, "")
		}
		if rev == 0 {
			rev = readRev // later pages read this same snapshot
		}
		for _, o := range objs {
			if f.matches(o) {
				out = append(out, o)
			}
		}
		if next == "" {
			return out, metav1.ListMeta{ResourceVersion: strconv.FormatInt(rev, 10)}, nil
		}
		start = next
		if int64(len(out)) >= limit {
			return out, metav1.ListMeta{ResourceVersion: strconv.FormatInt(rev, 10),
				Continue: encodeContinue(rev, next, prefix)}, nil
		}
	}
}

// setList fills a typed list with objs and the list metadata.
func setList(list runtime.Object, objs []runtime.Object, lm metav1.ListMeta) error {
	if err := meta.SetList(list, objs); err != nil {
		return err
	}
	lma, err := meta.ListAccessor(list)
	if err != nil {
		return err
	}
	lma.SetResourceVersion(lm.ResourceVersion)
	lma.SetContinue(lm.Continue)
	lma.SetRemainingItemCount(lm.RemainingItemCount)
	return nil
}
