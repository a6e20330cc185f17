package apiserver

import (
	"net/http"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// toTable renders objs as a meta.k8s.io/v1 Table with the kind's columns. Each row
// carries the object's metadata (PartialObjectMetadata) unless the client asked for
// includeObject=None, or the whole object for includeObject=Object.
func (s *Server) toTable(r *http.Request, h *resourceHandler, objs []runtime.Object, lm metav1.ListMeta) (*metav1.Table, error) {
	p := h.res.Strategy.Printer()
	include := r.URL.Query().Get("includeObject")
	now := time.Now()
	t := &metav1.Table{ListMeta: lm, Rows: make([]metav1.TableRow, 0, len(objs))}
	t.TypeMeta = metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"}
	t.ColumnDefinitions = p.Columns
	for _, o := range objs {
		cells, err := p.Row(o, now)
		if err != nil {
			return nil, err
		}
		row := metav1.TableRow{Cells: cells}
		switch include {
		case "None":
		case "Object":
			data, err := s.encode(runtime.ContentTypeJSON, o.DeepCopyObject())
			if err != nil {
				return nil, err
			}
			row.Object = runtime.RawExtension{Raw: data}
		default:
			data, err := s.encode(runtime.ContentTypeJSON, toPartial(o))
			if err != nil {
				return nil, err
			}
			row.Object = runtime.RawExtension{Raw: data}
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}
