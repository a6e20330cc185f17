package portallocator

import (
	"errors"
	"testing"
)

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in      string
		want    PortRange
		wantErr bool
	}{
		{in: "30000-32767", want: PortRange{Base: 30000, Size: 2768}},
		{in: "30000", want: PortRange{Base: 30000, Size: 1}},
		{in: "32767-30000", wantErr: true},
		{in: "0-10", wantErr: true},
		{in: "a-b", wantErr: true},
	}
	for _, tc := range tests {
		got, err := ParsePortRange(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("ParsePortRange(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestDefaultRangeBands(t *testing.T) {
	r := NewRange(PortRange{Base: 30000, Size: 2768})
	seen := map[int]bool{}
	for i := 0; i < 2768; i++ {
		p, err := r.ReserveNext()
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if seen[p] {
			t.Fatalf("port %d twice", p)
		}
		seen[p] = true
		// The dynamic band (30086-32767) is used up before the static one.
		if i < 2768-86 && p < 30086 {
			t.Fatalf("allocation %d took %d from the static band", i, p)
		}
	}
	if _, err := r.ReserveNext(); !errors.Is(err, ErrFull) {
		t.Errorf("allocation past full: %v", err)
	}
	r.Finish(31000, false)
	if p, err := r.ReserveNext(); err != nil || p != 31000 {
		t.Errorf("after freeing 31000 got %d, %v", p, err)
	}
}

func TestReserveErrors(t *testing.T) {
	r := NewRange(PortRange{Base: 30000, Size: 2768})
	if err := r.Reserve(30007); err != nil {
		t.Fatal(err)
	}
	if err := r.Reserve(30007); err == nil || err.Error() != "provided port is already allocated" {
		t.Errorf("second reserve: %v", err)
	}
	want := "provided port is not in the valid range. The range of valid ports is 30000-32767"
	if err := r.Reserve(29999); err == nil || err.Error() != want {
		t.Errorf("out of range: %v", err)
	}
}
