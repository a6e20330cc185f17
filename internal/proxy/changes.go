package proxy

import (
	"strings"
	"time"
)

// Changes is what a change tracker's Apply reports: the ServicePorts whose
// data-plane view was added, changed or removed, and, for endpoint changes, the
// earliest endpoints.kubernetes.io/last-change-trigger-time behind each.
//
// The zero value is empty and ready to use with Merge.
type Changes struct {
	// Changed holds every ServicePortName whose ServicePort (or endpoint list)
	// differs from what the previous Apply reported, including additions and
	// removals. Names are never present with a false value.
	Changed map[ServicePortName]bool
	// Triggered is the earliest trigger time per changed ServicePortName, for the
	// names that had one (only EndpointSlices carry it; Services never do).
	Triggered map[ServicePortName]time.Time
}

// Len is the number of changed ServicePortNames.
func (c *Changes) Len() int { return len(c.Changed) }

// Merge adds o's names to c and keeps the earlier of two trigger times. When c
// is empty it takes o's maps instead of copying them (the first sync's 10,000
// names): o must not be used afterwards.
func (c *Changes) Merge(o Changes) {
	if len(c.Changed) == 0 && len(c.Triggered) == 0 {
		c.Changed, c.Triggered = o.Changed, o.Triggered
		return
	}
	if len(o.Changed) > 0 && c.Changed == nil {
		c.Changed = make(map[ServicePortName]bool, len(o.Changed))
	}
	for n := range o.Changed {
		c.Changed[n] = true
	}
	if len(o.Triggered) > 0 && c.Triggered == nil {
		c.Triggered = make(map[ServicePortName]time.Time, len(o.Triggered))
	}
	for n, t := range o.Triggered {
		if old, ok := c.Triggered[n]; !ok || t.Before(old) {
			c.Triggered[n] = t
		}
	}
}

// add marks n changed and records trigger time t (zero: none), keeping the
// earliest.
func (c *Changes) add(n ServicePortName, t time.Time) {
	if c.Changed == nil {
		c.Changed = make(map[ServicePortName]bool)
	}
	c.Changed[n] = true
	if t.IsZero() {
		return
	}
	if c.Triggered == nil {
		c.Triggered = make(map[ServicePortName]time.Time)
	}
	if old, ok := c.Triggered[n]; !ok || t.Before(old) {
		c.Triggered[n] = t
	}
}

// comparePortNames orders ServicePortNames: by namespace, Service, port name,
// then protocol.
func comparePortNames(a, b ServicePortName) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	if c := strings.Compare(a.Port, b.Port); c != 0 {
		return c
	}
	return strings.Compare(string(a.Protocol), string(b.Protocol))
}

// walkSorted visits the union of two lists sorted by name (each name at most
// once per list), in order: fn gets the name and each list's entry, with
// whether it is present.
func walkSorted[T any](a, b []T, name func(T) ServicePortName, fn func(n ServicePortName, x T, inA bool, y T, inB bool)) {
	var zero T
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b):
			fn(name(a[i]), a[i], true, zero, false)
			i++
		case i == len(a):
			fn(name(b[j]), zero, false, b[j], true)
			j++
		default:
			na, nb := name(a[i]), name(b[j])
			switch c := comparePortNames(na, nb); {
			case c < 0:
				fn(na, a[i], true, zero, false)
				i++
			case c > 0:
				fn(nb, zero, false, b[j], true)
				j++
			default:
				fn(na, a[i], true, b[j], true)
				i++
				j++
			}
		}
	}
}

// bigMap is the size above which a map that Apply empties is replaced instead
// of cleared: a cleared map keeps its buckets, and a map that once held every
// Service (the first sync's changes, a relist) would keep ~1 MB at 10,000
// Services for the few entries a partial sync needs.
const bigMap = 128

// emptied returns m emptied: cleared when small, a new map when big.
func emptied[K comparable, V any](m map[K]V) map[K]V {
	if len(m) > bigMap {
		return make(map[K]V)
	}
	clear(m)
	return m
}
