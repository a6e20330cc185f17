package fake

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubesvc/kubesvc/internal/agent/podnet"
)

func TestFakeLifecycle(t *testing.T) {
	ctx := t.Context()
	f := New()
	if _, err := f.AddPod(ctx, podnet.PodRef{UID: "a"}); !errors.Is(err, podnet.ErrNotConfigured) {
		t.Fatalf("AddPod before Ensure: %v", err)
	}
	nn := podnet.NodeNetwork{PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/29"), netip.MustParsePrefix("fd00::/120")}}
	if err := f.Ensure(ctx, nn); err != nil {
		t.Fatal(err)
	}
	a, err := f.AddPod(ctx, podnet.PodRef{UID: "a", Namespace: "default", Name: "pa"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(a.IPs); got != "[10.244.0.2 fd00::2]" {
		t.Errorf("pod a's IPs %s", got)
	}
	again, err := f.AddPod(ctx, podnet.PodRef{UID: "a", Namespace: "default", Name: "pa"})
	if err != nil || fmt.Sprint(again.IPs) != fmt.Sprint(a.IPs) {
		t.Errorf("AddPod again = %v, %v", again, err)
	}
	for _, uid := range []string{"b", "c", "d", "e"} {
		if _, err := f.AddPod(ctx, podnet.PodRef{UID: uid}); err != nil {
			t.Fatalf("AddPod %s: %v", uid, err)
		}
	}
	// .2-.6 are the /29's five pod addresses.
	if _, err := f.AddPod(ctx, podnet.PodRef{UID: "f"}); !errors.Is(err, podnet.ErrPodCIDRExhausted) {
		t.Errorf("AddPod in a full range: %v", err)
	}
	if err := f.DelPod(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	fPod, err := f.AddPod(ctx, podnet.PodRef{UID: "f"})
	if err != nil || fPod.IPs[0].String() != "10.244.0.3" {
		t.Errorf("AddPod after a release = %v, %v; want b's old 10.244.0.3", fPod, err)
	}
	pods, err := f.ListPods(ctx)
	if err != nil || len(pods) != 5 || pods[0].Pod.UID != "a" {
		t.Errorf("ListPods = %v, %v", pods, err)
	}

	f.Orphan(netip.MustParseAddr("fd00::99"), "ghost")
	released, err := f.ReleaseOrphanIPs(ctx, map[string]bool{"a": true})
	if err != nil || fmt.Sprint(released) != "[fd00::99]" {
		t.Errorf("ReleaseOrphanIPs = %v, %v", released, err)
	}

	routes := []podnet.Route{{Dst: netip.MustParsePrefix("10.244.1.0/24"), Via: netip.MustParseAddr("192.0.2.2")}}
	if err := f.SyncRoutes(ctx, routes); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fmt.Sprint(routes), fmt.Sprint(f.Routes())); diff != "" {
		t.Error(diff)
	}
	if got := len(f.CallsTo(MethodAddPod)); got != 9 {
		t.Errorf("%d AddPod calls recorded, want 9", got)
	}
}

func TestFakeFail(t *testing.T) {
	ctx := t.Context()
	f := New()
	boom := errors.New("boom")
	f.Fail(MethodEnsure, boom)
	nn := podnet.NodeNetwork{PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/24")}}
	if err := f.Ensure(ctx, nn); !errors.Is(err, boom) {
		t.Fatalf("Ensure = %v, want boom", err)
	}
	f.Fail(MethodEnsure, nil)
	if err := f.Ensure(ctx, nn); err != nil {
		t.Fatal(err)
	}
	f.SetExhausted(true)
	if _, err := f.AddPod(ctx, podnet.PodRef{UID: "a"}); !errors.Is(err, podnet.ErrPodCIDRExhausted) {
		t.Errorf("AddPod while exhausted: %v", err)
	}
	f.SetExhausted(false)
	if _, err := f.AddPod(ctx, podnet.PodRef{UID: "a"}); err != nil {
		t.Errorf("AddPod after exhaustion ends: %v", err)
	}
	if want := "ip 10.244.0.2 a\nnode podCIDRs=[10.244.0.0/24]\npod a / ips=[10.244.0.2] veth=" + podnet.HostVethName("a"); f.Dump() != want {
		t.Errorf("Dump:\n%s\nwant:\n%s", f.Dump(), want)
	}
}
