package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/kubeversion"
)

// TestCluster covers the cluster-level commands: version, api-resources, cluster-info,
// get ns, the built-in kubernetes Service, explain, and unauthenticated access.
func TestCluster(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := s.kubectl(t)

	t.Run("version", func(t *testing.T) {
		k := k.on(t)
		out, ok := k.try("version")
		if !ok {
			return
		}
		want := []*regexp.Regexp{
			regexp.MustCompile(`^Client Version: v1\.\d+\.\d+\S*$`),
			regexp.MustCompile(`^Kustomize Version: v\d+\.\d+\.\d+$`),
			// The Kubernetes version whose API kubesvc serves. The gcloud kubectl
			// dispatcher has no kubectl.1.37 beside it, so it runs its built-in
			// kubectl (v1.32.4-dispatcher), which warns about the skew on stderr
			// (TestKubectlVersions checks the warnings).
			regexp.MustCompile(`^Server Version: ` + regexp.QuoteMeta(kubeversion.GitVersion) + `$`),
		}
		got := lines(out)
		if len(got) != len(want) {
			t.Fatalf("kubectl version printed %d lines, want %d:\n%s", len(got), len(want), out)
		}
		for i, re := range want {
			if !re.MatchString(got[i]) {
				t.Errorf("line %d: %q does not match %s", i+1, got[i], re)
			}
		}
	})

	t.Run("api-resources", func(t *testing.T) {
		k := k.on(t)
		out, ok := k.try("api-resources")
		if !ok {
			return
		}
		got := lines(out)
		if !regexp.MustCompile(`^NAME +SHORTNAMES +APIVERSION +NAMESPACED +KIND$`).MatchString(got[0]) {
			t.Errorf("header: %q", got[0])
		}
		// NAME SHORTNAMES APIVERSION NAMESPACED KIND, as kube-apiserver 1.32+ lists them.
		want := [][]string{
			{"configmaps", "cm", "v1", "true", "ConfigMap"},
			{"endpoints", "ep", "v1", "true", "Endpoints"},
			{"events", "ev", "v1", "true", "Event"},
			{"namespaces", "ns", "v1", "false", "Namespace"},
			{"nodes", "no", "v1", "false", "Node"},
			{"pods", "po", "v1", "true", "Pod"},
			{"secrets", "", "v1", "true", "Secret"},
			{"serviceaccounts", "sa", "v1", "true", "ServiceAccount"},
			{"services", "svc", "v1", "true", "Service"},
			{"deployments", "deploy", "apps/v1", "true", "Deployment"},
			{"replicasets", "rs", "apps/v1", "true", "ReplicaSet"},
			{"leases", "", "coordination.k8s.io/v1", "true", "Lease"},
			{"endpointslices", "", "discovery.k8s.io/v1", "true", "EndpointSlice"},
			{"events", "ev", "events.k8s.io/v1", "true", "Event"},
			{"ipaddresses", "ip", "networking.k8s.io/v1", "false", "IPAddress"},
			{"servicecidrs", "", "networking.k8s.io/v1", "false", "ServiceCIDR"},
		}
		for _, w := range want {
			var re *regexp.Regexp
			if w[1] == "" {
				re = regexp.MustCompile(fmt.Sprintf(`^%s +%s +%s +%s$`, regexp.QuoteMeta(w[0]), regexp.QuoteMeta(w[2]), w[3], w[4]))
			} else {
				re = regexp.MustCompile(fmt.Sprintf(`^%s +%s +%s +%s +%s$`, regexp.QuoteMeta(w[0]), w[1], regexp.QuoteMeta(w[2]), w[3], w[4]))
			}
			found := false
			for _, l := range got {
				if re.MatchString(l) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("no line matching %s in kubectl api-resources:\n%s", re, out)
			}
		}
	})

	t.Run("api-resources categories all", func(t *testing.T) {
		k := k.on(t)
		// `get all` lists exactly these.
		k.expectOut(""+
			"NAME          SHORTNAMES   APIVERSION   NAMESPACED   KIND\n"+
			"pods          po           v1           true         Pod\n"+
			"services      svc          v1           true         Service\n"+
			"deployments   deploy       apps/v1      true         Deployment\n"+
			"replicasets   rs           apps/v1      true         ReplicaSet\n",
			"api-resources", "--categories=all")
	})

	t.Run("cluster-info", func(t *testing.T) {
		k := k.on(t)
		// As on a kubeadm cluster: the kube-dns Service is a cluster service.
		k.expectOut("Kubernetes control plane is running at "+s.URL+"\n"+
			"CoreDNS is running at "+s.URL+"/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy\n"+
			"\n"+
			"To further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.\n",
			"cluster-info")
	})

	t.Run("get ns", func(t *testing.T) {
		k := k.on(t)
		out, ok := k.try("get", "ns")
		if !ok {
			return
		}
		want := []string{
			`NAME              STATUS   AGE`,
			`default           Active   {AGE}`,
			`kube-node-lease   Active   {AGE}`,
			`kube-public       Active   {AGE}`,
			`kube-system       Active   {AGE}`,
		}
		matchLines(t, out, want)
	})

	// Every cluster has the kubernetes Service in default (kube-apiserver creates it
	// with the first address of the service CIDR and port 443 → the secure port).
	t.Run("get svc kubernetes", func(t *testing.T) {
		k := k.on(t)
		out, ok := k.try("get", "svc")
		if !ok {
			return
		}
		tb, err := parseTable(out)
		if err != nil {
			t.Fatal(err)
		}
		r, found := tb.row("kubernetes")
		if !found {
			t.Fatalf("no kubernetes Service in default; real clusters print\n"+
				"NAME         TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE\n"+
				"kubernetes   ClusterIP   10.96.0.1    <none>        443/TCP   AGE\ngot:\n%s", out)
		}
		checkCells(t, r, map[string]string{"TYPE": "ClusterIP", "EXTERNAL-IP": "<none>", "PORT(S)": "443/TCP"})
		subCheck(t, "kubernetes cluster IP", func() error {
			if r["CLUSTER-IP"] != "10.96.0.1" {
				return fmt.Errorf("CLUSTER-IP of kubernetes is %q, want 10.96.0.1", r["CLUSTER-IP"])
			}
			return nil
		})
	})

	t.Run("explain service.spec", func(t *testing.T) {
		k := k.on(t)
		out, ok := k.try("explain", "service.spec")
		if !ok {
			return
		}
		head := "KIND:       Service\nVERSION:    v1\n\nFIELD: spec <ServiceSpec>\n\n\nDESCRIPTION:\n" +
			"    Spec defines the behavior of a service.\n"
		if !strings.HasPrefix(out, head) {
			t.Errorf("kubectl explain service.spec does not start with\n%s\ngot:\n%s", head, tail(out, 2000))
		}
		for _, field := range [][]string{
			{"  clusterIP\t<string>"},
			{"  clusterIPs\t<[]string>"},
			{"  ports\t<[]ServicePort>"},
			{"  selector\t<map[string]string>"},
			// Real kube-apiserver OpenAPI carries the enum of every +enum type.
			{"  type\t<string>", "  enum: ClusterIP, ExternalName, LoadBalancer, NodePort"},
			{"  sessionAffinity\t<string>", "  enum: ClientIP, None"},
		} {
			if !containsLines(out, field...) {
				t.Errorf("kubectl explain service.spec has no lines %q", field)
			}
		}
	})

	t.Run("explain service.spec.type", func(t *testing.T) {
		k := k.on(t)
		out, ok := k.try("explain", "service.spec.type")
		if !ok {
			return
		}
		want := []string{"KIND:       Service", "VERSION:    v1", "", "FIELD: type <string>",
			"ENUM:", "    ClusterIP", "    ExternalName", "    LoadBalancer", "    NodePort", "", "DESCRIPTION:"}
		if !containsLines(out, want...) {
			t.Errorf("kubectl explain service.spec.type: want the lines\n%s\ngot:\n%s", strings.Join(want, "\n"), out)
		}
		if !containsLines(out, "    Possible enum values:") {
			t.Errorf("kubectl explain service.spec.type: no \"Possible enum values:\" in the description:\n%s", out)
		}
	})

	t.Run("explain required fields", func(t *testing.T) {
		k := k.on(t)
		for _, c := range []struct {
			path  string
			lines []string
		}{
			{"service.spec.ports", []string{"  port\t<integer> -required-"}},
			{"service.spec.ports", []string{"  protocol\t<string>", "  enum: SCTP, TCP, UDP"}},
			// apps/v1 DeploymentSpec.selector has no omitempty: required, like template.
			{"deployment.spec", []string{"  selector\t<LabelSelector> -required-"}},
			{"deployment.spec", []string{"  template\t<PodTemplateSpec> -required-"}},
		} {
			if out, ok := k.try("explain", c.path); ok && !containsLines(out, c.lines...) {
				t.Errorf("kubectl explain %s has no lines %q", c.path, c.lines)
			}
		}
	})

	t.Run("unauthenticated", func(t *testing.T) {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		resp, err := c.Get(s.URL + "/api/v1/namespaces")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /api/v1/namespaces without credentials: HTTP %d, want 401; body %s", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
		var st map[string]any
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("body is not JSON: %v: %s", err, body)
		}
		want := map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
			"status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": float64(401)}
		if fmt.Sprint(st) != fmt.Sprint(want) {
			t.Errorf("401 body %s, want %v", body, want)
		}
		// /version stays public (system:public-info-viewer).
		resp, err = c.Get(s.URL + "/version")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /version without credentials: HTTP %d, want 200", resp.StatusCode)
		}
	})
}

// matchLines checks out line by line against want, where a trailing "{AGE}" in a
// wanted line matches kubectl's AGE column.
func matchLines(t *testing.T, out string, want []string) {
	t.Helper()
	got := lines(out)
	if len(got) != len(want) {
		t.Errorf("want %d lines, got %d:\n%s", len(want), len(got), out)
		return
	}
	for i, w := range want {
		if g := got[i]; strings.HasSuffix(w, "{AGE}") {
			prefix := strings.TrimSuffix(w, "{AGE}")
			if !strings.HasPrefix(g, prefix) || !ageRE.MatchString(strings.TrimPrefix(g, prefix)) {
				t.Errorf("line %d: got %q, want %q (AGE = a duration)", i+1, g, w)
			}
		} else if g != w {
			t.Errorf("line %d: got %q, want %q", i+1, g, w)
		}
	}
}

// checkCells compares table cells; a want value starting with "~" is a regexp.
func checkCells(t *testing.T, row map[string]string, want map[string]string) {
	t.Helper()
	for col, w := range want {
		g, ok := row[col]
		switch {
		case !ok:
			t.Errorf("no column %s in row %v", col, row)
		case strings.HasPrefix(w, "~"):
			if !regexp.MustCompile(w[1:]).MatchString(g) {
				t.Errorf("%s of %s: %q does not match %s", col, row["NAME"], g, w[1:])
			}
		case g != w:
			t.Errorf("%s of %s: got %q, want %q", col, row["NAME"], g, w)
		}
	}
	if age, ok := row["AGE"]; ok && !ageRE.MatchString(age) {
		t.Errorf("AGE of %s: %q is not a duration", row["NAME"], age)
	}
}
