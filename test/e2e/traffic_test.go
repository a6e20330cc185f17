package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// TestServiceTraffic is the service proxy's acceptance on one node (`kubesvc up`
// in a loopback-only namespace, plus a client namespace that routes to it), in
// each proxy mode: ClusterIP from the node and from a pod reaches every endpoint,
// a new endpoint gets traffic once Ready, NodePort on the node's address and on
// localhost, a Service without endpoints refuses at once, ClientIP affinity,
// externalIPs and load-balancer IPs from outside, and externalTrafficPolicy
// Local keeps the client's address and answers on its healthCheckNodePort.
// The nftables run balances pods' connections to ClusterIPs in connect()
// (socket load balancing, where the machine allows it); the iptables run
// turns that off, so that pods' connections go through the rules' DNAT.
func TestServiceTraffic(t *testing.T) {
	for _, mode := range []string{"nftables", "iptables"} {
		t.Run(mode, func(t *testing.T) {
			if testing.Short() {
				t.Skip("runs kubesvc up with a real node")
			}
			if isolate.Run(t) {
				return
			}
			testServiceTraffic(t, mode, mode == "iptables")
		})
	}
}

func testServiceTraffic(t *testing.T, mode string, noSocketLB bool) {
	args := []string{"--proxy-mode", mode}
	if noSocketLB {
		args = append(args, "--disable-socket-lb")
	}
	s := startUp(t, args...)
	k := s.kubectl(t)
	eventually(t, "the node Ready", 60*time.Second, func() error {
		out, err := jsonpath(k, `{.items[0].status.conditions[?(@.type=="Ready")].status}`, "nodes")
		if err != nil || out != "True" {
			return fmt.Errorf("Ready=%q %v", out, err)
		}
		return nil
	})
	nodeIP, err := jsonpath(k, `{.items[0].status.addresses[?(@.type=="InternalIP")].address}`, "nodes")
	if err != nil || nodeIP == "" {
		t.Fatalf("node InternalIP %q: %v", nodeIP, err)
	}

	// A client "outside the cluster": a namespace with a veth to the node, and
	// routes to the documentation range the external addresses come from.
	lanClient(t)

	k.ok("create", "deployment", "web", "--image=registry.k8s.io/e2e-test-images/agnhost:2.53", "--replicas=3", "--", "/agnhost", "netexec", "--http-port=8080")
	k.ok("rollout", "status", "deployment/web", "--timeout=90s")
	k.ok("expose", "deployment", "web", "--port=80", "--target-port=8080", "--type=NodePort")
	applyYAML(t, k, trafficManifests)
	clusterIP, _ := jsonpath(k, "{.spec.clusterIP}", "svc", "web")
	nodePort, _ := jsonpath(k, "{.spec.ports[0].nodePort}", "svc", "web")
	pods := strings.Fields(k.ok("get", "pod", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"))
	podIPs := strings.Fields(k.ok("get", "pod", "-l", "app=web", "-o", "jsonpath={.items[*].status.podIP}"))

	// spread asks url 30 times and says which pods answered /hostname.
	spread := func(base string) (map[string]int, error) {
		seen := map[string]int{}
		for range 30 {
			name, err := httpGet(base + "/hostname")
			if err != nil {
				return seen, err
			}
			seen[name]++
		}
		return seen, nil
	}
	everyPod := func(seen map[string]int) error {
		for _, p := range pods {
			if seen[p] == 0 {
				return fmt.Errorf("pod %s never answered: %v", p, seen)
			}
		}
		return nil
	}

	t.Run("the rules name the Service", func(t *testing.T) {
		// The seeds' `iptables-save | grep KUBE | grep nginx`, and its nftables twin.
		eventually(t, "rules that name default/web", 30*time.Second, func() error {
			var out []byte
			var err error
			if mode == "iptables" {
				out, err = exec.Command("sh", "-c", "iptables-save | grep KUBE | grep default/web").CombinedOutput()
			} else {
				out, err = exec.Command("sh", "-c", "nft list table ip kubesvc | grep default/web").CombinedOutput()
			}
			if err != nil || len(out) == 0 {
				return fmt.Errorf("%v: %s", err, out)
			}
			if !strings.Contains(string(out), clusterIP) {
				return fmt.Errorf("no rule with the ClusterIP %s:\n%s", clusterIP, out)
			}
			return nil
		})
	})
	t.Run("ClusterIP from the node", func(t *testing.T) {
		eventually(t, "every endpoint answers on the ClusterIP", 30*time.Second, func() error {
			seen, err := spread("http://" + clusterIP)
			if err != nil {
				return err
			}
			return everyPod(seen)
		})
	})
	t.Run("ClusterIP from a pod", func(t *testing.T) {
		// netexec's /dial in one pod asks the ClusterIP 30 times.
		q := url.Values{"request": {"hostname"}, "host": {clusterIP}, "port": {"80"}, "protocol": {"http"}, "tries": {"30"}}
		body, err := httpGet("http://" + podIPs[0] + ":8080/dial?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		var dr struct{ Responses, Errors []string }
		if err := json.Unmarshal([]byte(body), &dr); err != nil {
			t.Fatalf("/dial = %q: %v", body, err)
		}
		seen := map[string]int{}
		for _, r := range dr.Responses {
			seen[r]++
		}
		if len(dr.Errors) > 0 {
			t.Errorf("/dial errors: %v", dr.Errors)
		}
		if err := everyPod(seen); err != nil {
			t.Error(err)
		}
		// Which way they went: through the rules' DNAT, each connection left
		// a conntrack entry from the pod to the ClusterIP in the node's
		// namespace (TIME_WAIT); balanced in connect(), none.
		socketLB := !noSocketLB && strings.Contains(s.log.String(), "socket load balancing: pods' TCP connections")
		if !noSocketLB && !socketLB {
			t.Logf("socket load balancing is not available here; pods' connections went through the rules:\n%s", grepLines(s.log.String(), "socket load balancing"))
		}
		b, err := os.ReadFile("/proc/thread-self/net/nf_conntrack")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range lines(string(b)) {
			if strings.Contains(l, " src="+podIPs[0]+" dst="+clusterIP+" ") {
				n++
			}
		}
		switch {
		case socketLB && n != 0:
			t.Errorf("socket load balancing is on, yet %d conntrack entries go from the pod to the ClusterIP (DNAT)", n)
		case !socketLB && n == 0:
			t.Errorf("no conntrack entry from the pod to the ClusterIP: the 30 connections did not go through the rules' DNAT")
		}
		// The proxy's metrics say so too.
		metrics, err := httpGet("http://127.0.0.1:10249/metrics")
		if err != nil {
			t.Fatal(err)
		}
		attached := strings.Contains(metrics, "\nkubesvc_socket_lb_attached 1\n")
		if attached != socketLB {
			t.Errorf("kubesvc_socket_lb_attached is 1: %v, want %v:\n%s", attached, socketLB, grepLines(metrics, "kubesvc_socket_lb"))
		}
	})
	t.Run("NodePort", func(t *testing.T) {
		for _, addr := range []string{nodeIP, "127.0.0.1"} {
			seen, err := spread("http://" + net.JoinHostPort(addr, nodePort))
			if err != nil {
				t.Errorf("%s:%s: %v", addr, nodePort, err)
				continue
			}
			if err := everyPod(seen); err != nil {
				t.Errorf("%s:%s: %v", addr, nodePort, err)
			}
		}
		// also from outside, to the node's address
		if out, err := clientCurl("http://" + net.JoinHostPort(nodeIP, nodePort) + "/hostname"); err != nil {
			t.Errorf("NodePort from the client namespace: %v: %s", err, out)
		}
	})
	t.Run("no endpoints", func(t *testing.T) {
		ip, _ := jsonpath(k, "{.spec.clusterIP}", "svc", "nothing")
		start := time.Now()
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "80"), 5*time.Second)
		took := time.Since(start)
		if err == nil {
			conn.Close()
			t.Fatal("a Service without endpoints accepted a connection")
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial %s:80: %v, want connection refused", ip, err)
		}
		t.Logf("connection refused after %v", took.Round(time.Microsecond))
	})
	t.Run("ClientIP affinity", func(t *testing.T) {
		ip, _ := jsonpath(k, "{.spec.clusterIP}", "svc", "sticky")
		seen, err := spread("http://" + ip)
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != 1 {
			t.Errorf("with ClientIP affinity 30 requests reached %v, want one pod", seen)
		}
	})
	t.Run("externalIPs and load-balancer IPs", func(t *testing.T) {
		k.ok("patch", "svc", "lb", "--subresource=status", "--type=merge", "-p", `{"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.50"}]}}}`)
		for _, u := range []string{"http://192.0.2.80/hostname", "http://203.0.113.50/hostname"} {
			eventually(t, u+" from the client namespace", 30*time.Second, func() error {
				out, err := clientCurl(u)
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				if !strings.HasPrefix(out, "web-") {
					return fmt.Errorf("answer %q", out)
				}
				return nil
			})
		}
	})
	t.Run("externalTrafficPolicy Local", func(t *testing.T) {
		np, _ := jsonpath(k, "{.spec.ports[0].nodePort}", "svc", "local")
		hc, _ := jsonpath(k, "{.spec.healthCheckNodePort}", "svc", "local")
		eventually(t, "the client's own address at the pod", 30*time.Second, func() error {
			out, err := clientCurl("http://" + net.JoinHostPort(nodeIP, np) + "/clientip")
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			if host, _, _ := net.SplitHostPort(out); host != lanClientIP {
				return fmt.Errorf("the pod saw %q, want the client's %s", out, lanClientIP)
			}
			return nil
		})
		eventually(t, "the health check node port", 30*time.Second, func() error {
			out, err := httpGet("http://" + net.JoinHostPort(nodeIP, hc) + "/")
			if err != nil {
				return err
			}
			if !strings.Contains(out, `"localEndpoints":3`) {
				return fmt.Errorf("health check answer %q", out)
			}
			return nil
		})
	})
	t.Run("UDP: a gone endpoint's conntrack entry goes", func(t *testing.T) {
		k.ok("wait", "--for=condition=Ready", "pod/udp-a", "pod/udp-b", "--timeout=60s")
		ip, _ := jsonpath(k, "{.spec.clusterIP}", "svc", "udp")
		// One socket, one source port: one conntrack entry for all datagrams.
		conn, err := net.Dial("udp", net.JoinHostPort(ip, "53"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ask := func() (string, error) {
			if _, err := conn.Write([]byte("hostname")); err != nil {
				return "", err
			}
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 256)
			n, err := conn.Read(buf)
			return string(buf[:n]), err
		}
		var first string
		eventually(t, "an answer over UDP", 30*time.Second, func() error {
			var err error
			first, err = ask()
			return err
		})
		k.ok("label", "pod", first, "udp-") // out of the Service, still running
		other := map[string]string{"udp-a": "udp-b", "udp-b": "udp-a"}[first]
		eventually(t, "datagrams on the same socket reach the other endpoint", 30*time.Second, func() error {
			got, err := ask()
			if err != nil {
				return err
			}
			if got != other {
				return fmt.Errorf("answered by %q, want %q", got, other)
			}
			return nil
		})
	})
	t.Run("a new endpoint gets traffic", func(t *testing.T) {
		k.ok("scale", "deployment", "web", "--replicas=4")
		k.ok("rollout", "status", "deployment/web", "--timeout=90s")
		ready := time.Now()
		names := strings.Fields(k.ok("get", "pod", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"))
		eventually(t, "all 4 pods answer on the ClusterIP", 30*time.Second, func() error {
			seen, err := spread("http://" + clusterIP)
			if err != nil {
				return err
			}
			for _, n := range names {
				if seen[n] == 0 {
					return fmt.Errorf("%s not reached: %v", n, seen)
				}
			}
			return nil
		})
		t.Logf("the 4th pod answered on the ClusterIP within %v of the rollout's end", time.Since(ready).Round(time.Millisecond))
	})
}

// lanClientIP is the client namespace's address; lanNodeSide is the node's end.
const (
	lanClientIP = "198.51.100.2"
	lanNodeSide = "198.51.100.1"
)

// lanClient makes the network namespace "client" with a veth to the test's
// namespace (the node): 198.51.100.2/24 there, 198.51.100.1/24 here, and routes
// to the external and load-balancer ranges (192.0.2.0/24, 203.0.113.0/24) via the
// node.
func lanClient(t *testing.T) {
	t.Helper()
	isolate.Must(t, "sh", "-c", "mkdir -p /run/netns && (mountpoint -q /run/netns || mount -t tmpfs none /run/netns)")
	isolate.Must(t, "ip", "netns", "add", "client")
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", "client").Run() })
	isolate.Must(t, "ip", "link", "add", "to-client", "type", "veth", "peer", "name", "eth0", "netns", "client")
	isolate.Must(t, "ip", "addr", "add", lanNodeSide+"/24", "dev", "to-client")
	isolate.Must(t, "ip", "link", "set", "to-client", "up")
	isolate.Must(t, "ip", "-n", "client", "addr", "add", lanClientIP+"/24", "dev", "eth0")
	isolate.Must(t, "ip", "-n", "client", "link", "set", "eth0", "up")
	isolate.Must(t, "ip", "-n", "client", "link", "set", "lo", "up")
	isolate.Must(t, "ip", "-n", "client", "route", "add", "default", "via", lanNodeSide)
}

// clientCurl fetches u from the client namespace.
func clientCurl(u string) (string, error) {
	out, err := exec.Command("ip", "netns", "exec", "client", "curl", "-sS", "-m", "5", u).CombinedOutput()
	return string(out), err
}

// trafficManifests are TestServiceTraffic's other Services over the web pods,
// and a UDP Service over two pods of its own.
const trafficManifests = `apiVersion: v1
kind: Service
metadata:
  name: udp
spec:
  selector:
    udp: "yes"
  ports:
  - port: 53
    protocol: UDP
    targetPort: 8081
---
apiVersion: v1
kind: Pod
metadata:
  name: udp-a
  labels:
    udp: "yes"
spec:
  containers:
  - name: app
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: ["netexec", "--http-port=8080", "--udp-port=8081"]
---
apiVersion: v1
kind: Pod
metadata:
  name: udp-b
  labels:
    udp: "yes"
spec:
  containers:
  - name: app
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: ["netexec", "--http-port=8080", "--udp-port=8081"]
---
apiVersion: v1
kind: Service
metadata:
  name: nothing
spec:
  ports:
  - port: 80
---
apiVersion: v1
kind: Service
metadata:
  name: sticky
spec:
  selector:
    app: web
  sessionAffinity: ClientIP
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: ext
spec:
  selector:
    app: web
  externalIPs: ["192.0.2.80"]
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: lb
spec:
  type: LoadBalancer
  # a class of its own: the test writes the status, not kubesvc's service-lb-controller
  loadBalancerClass: example.com/manual
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: local
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
`

// grepLines is the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
