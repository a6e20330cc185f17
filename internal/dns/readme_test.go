package dns

import (
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestREADME checks README.md against the code, as CoreDNS's
// test/readme_test.go checks plugin READMEs: the fixed sections in order, a
// section per handler in chain order, every zone example parses, the Go
// example parses, and every metric the server registers is documented.
func TestREADME(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	at := 0
	for _, h := range []string{"## Name", "## Description", "## Syntax", "## Examples", "## Metrics"} {
		i := strings.Index(readme[at:], "\n"+h+"\n")
		if i < 0 {
			t.Fatalf("README.md lacks section %q (in this order)", h)
		}
		at += i + 1
	}
	reg := prometheus.NewRegistry()
	s, err := New(Config{Client: fake.NewClientset(), ListenAddrs: []string{"127.0.0.1:0"}, ResolvConf: "/nonexistent", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	at = 0
	for _, h := range s.handlers {
		i := strings.Index(readme[at:], "\n### "+h.Name()+"\n")
		if i < 0 {
			t.Errorf("README.md lacks a section for handler %q after the previous one (chain order)", h.Name())
			continue
		}
		at += i + 1
	}

	blocks := regexp.MustCompile("(?s)```(\\w*)\n(.*?)```").FindAllStringSubmatch(readme, -1)
	var zones, gos int
	for _, blk := range blocks {
		switch blk[1] {
		case "zone":
			for line := range strings.SplitSeq(strings.TrimSpace(blk[2]), "\n") {
				zones++
				if _, err := dns.NewRR(line); err != nil {
					t.Errorf("zone example %q does not parse: %v", line, err)
				}
			}
		case "go":
			gos++
			src := "package x\nfunc _() {\n" + blk[2] + "\n}\n"
			if _, err := parser.ParseFile(token.NewFileSet(), "README.md", src, 0); err != nil {
				t.Errorf("Go example does not parse: %v", err)
			}
		}
	}
	if zones == 0 || gos == 0 {
		t.Errorf("README.md has %d zone example lines and %d Go examples, want some of each", zones, gos)
	}

	// Touch every vector so that Gather lists it.
	m := s.m
	m.requests.WithLabelValues("", "", "", "", "", "")
	m.responses.WithLabelValues("", "", "", "", "")
	m.duration.WithLabelValues("", "", "", "")
	m.requestSize.WithLabelValues("", "", "", "")
	m.responseSize.WithLabelValues("", "", "", "")
	m.pluginOn.WithLabelValues("", "", "", "")
	m.cacheEntries.WithLabelValues("", "", "", "")
	m.cacheRequests.WithLabelValues("", "", "")
	m.cacheHits.WithLabelValues("", "", "", "")
	m.cacheMisses.WithLabelValues("", "", "")
	m.cacheEvictions.WithLabelValues("", "", "", "")
	m.forwardRequests.WithLabelValues("")
	m.forwardResponses.WithLabelValues("", "")
	m.forwardDuration.WithLabelValues("", "")
	m.programming.WithLabelValues("")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(families) != 17 {
		t.Errorf("gathered %d metric families, want 17", len(families))
	}
	for _, f := range families {
		if !strings.Contains(readme, "`"+f.GetName()+"`") && !strings.Contains(readme, "`"+f.GetName()+"{") {
			t.Errorf("README.md does not document metric %s", f.GetName())
		}
	}
}

// TestPackageDoc: the package has its documentation in doc.go.
func TestPackageDoc(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	if f.Doc == nil || !strings.HasPrefix(f.Doc.Text(), "Package dns ") {
		t.Error("doc.go has no package documentation starting with \"Package dns \"")
	}
}

// TestREADMEExamples asks a server holding the README's example cluster for
// every record of its zone example and finds it in the answer.
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	tcp := corev1.ProtocolTCP
	ts := startServer(t, Config{}, true,
		namespace("my-ns"),
		clusterIPService("my-ns", "web", []string{"10.96.0.20"}, svcPort("http", tcp, 80)),
		headlessService("my-ns", "db", false, svcPort("pg", tcp, 5432)),
		endpointSlice("my-ns", "db-1", "db", discoveryv1.AddressTypeIPv4, []ep{
			{addr: "10.244.1.5", hostname: "db-0", ready: ptrTo(true)}, {addr: "10.244.1.6", ready: ptrTo(true)},
		}, slicePort("pg", tcp, 5432)),
		externalNameService("my-ns", "ext", "my.database.example.com"),
	)
	blk := regexp.MustCompile("(?s)```zone\n(.*?)```").FindSubmatch(b)
	if blk == nil {
		t.Fatal("no zone example")
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(blk[1])), "\n") {
		want, err := dns.NewRR(line)
		if err != nil {
			t.Fatal(err)
		}
		h := want.Header()
		m := ts.query(t, "udp", h.Name, h.Rrtype, 0)
		if h.Rrtype == dns.TypeSOA {
			if len(m.Answer) != 1 || m.Answer[0].(*dns.SOA).Ns != want.(*dns.SOA).Ns {
				t.Errorf("%s: answer %q", line, rrStrings(m.Answer))
			}
			continue
		}
		if got := rrStrings(m.Answer); !slices.Contains(got, strings.Join(strings.Fields(want.String()), " ")) {
			t.Errorf("README says %q, the server answers %q", line, got)
		}
	}
	for name, rcode := range map[string]int{
		"nothere.my-ns.svc.cluster.local.": dns.RcodeNameError,
		"my-ns.svc.cluster.local.":         dns.RcodeSuccess,
	} {
		if m := ts.query(t, "udp", name, dns.TypeA, 0); m.Rcode != rcode || len(m.Answer) != 0 || len(m.Ns) != 1 {
			t.Errorf("%s: %s, want %s with the SOA", name, describe(m), dns.RcodeToString[rcode])
		}
	}
}
