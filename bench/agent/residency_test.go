package main

import "testing"

func TestGoPackage(t *testing.T) {
	for _, tc := range []struct{ sym, want string }{
		{"runtime.mallocgc", "runtime"},
		{"k8s.io/client-go/tools/cache.(*Reflector).watch", "k8s.io/client-go/tools/cache"},
		{"k8s.io/api/core/v1.(*Pod).Unmarshal", "k8s.io/api/core/v1"},
		{"sync/atomic.(*Pointer[k8s.io/client-go/tools/cache.x]).Load", "sync/atomic"},
		{"slices.SortFunc[go.shape.[]string,go.shape.string]", "slices"},
		{"main.main", "main"},
		{"type:.eq.[2]interface {}", "type:"},
	} {
		if got := goPackage(tc.sym); got != tc.want {
			t.Errorf("goPackage(%q) = %q, want %q", tc.sym, got, tc.want)
		}
	}
}
