package images

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

const self = "/usr/local/bin/kubesvc"

// machine is the fake machine's programs, by what LookPath is asked for.
func machineLookPath(file string) (string, error) {
	programs := map[string]string{
		"sh": "/usr/bin/sh", "/bin/sh": "/bin/sh",
		"bash": "/usr/bin/bash", "/bin/bash": "/bin/bash",
		"sleep": "/usr/bin/sleep", "curl": "/usr/bin/curl", "dig": "/usr/bin/dig",
		"app": "/usr/bin/app", "/opt/app/server": "/opt/app/server",
	}
	if p, ok := programs[file]; ok {
		return p, nil
	}
	return "", fmt.Errorf("exec: %q: %w", file, exec.ErrNotFound)
}

func builtinProgram(args ...string) runtime.Program {
	return runtime.Program{Path: self, Args: append([]string{"builtin-image"}, args...)}
}

func TestResolve(t *testing.T) {
	const (
		agnhost  = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
		bootcamp = "gcr.io/google-samples/kubernetes-bootcamp:v1"
		digest   = "sha256:6d2a0a7d8cd1c6a5c0f4e2a5f0f4e1c9d5b0a2f3d1c8e7f6a5b4c3d2e1f0a9b8"
	)
	nginxDefault := builtinProgram("nginx", "-g", "daemon off;")
	r := Resolver{
		Self:     self,
		LookPath: machineLookPath,
		Maps: map[string]string{
			"example.com/team/app":    "/opt/app/server",
			"nginx:custom":            "app",
			"example.com/tagged:v2":   "/opt/app/server",
			"example.com/tagged:v3":   "sleep",
			"example.com/nothing:any": "not-on-this-machine",
		},
	}
	tests := []struct {
		name    string
		image   string
		command []string
		args    []string
		want    runtime.Program
		wantErr error
		// errHas are words the error message must contain.
		errHas []string
	}{
		// Built-in images: any registry, tag or digest.
		{name: "nginx", image: "nginx", want: nginxDefault},
		{name: "nginx tag", image: "nginx:1.25", want: nginxDefault},
		{name: "nginx docker.io", image: "docker.io/library/nginx:latest", want: nginxDefault},
		{name: "nginx library", image: "library/nginx", want: nginxDefault},
		{name: "nginx index.docker.io", image: "index.docker.io/library/nginx:1.27-alpine", want: nginxDefault},
		{name: "nginx digest", image: "nginx@" + digest, want: nginxDefault},
		{name: "nginx tag and digest", image: "nginx:1.27@" + digest, want: nginxDefault},
		{name: "nginx other registry", image: "mirror.example.com:5000/library/nginx:1", want: nginxDefault},
		{name: "nginx e2e image", image: "registry.k8s.io/e2e-test-images/nginx:1.27.0-2", want: nginxDefault},
		{name: "nginx localhost registry", image: "localhost/nginx", want: nginxDefault},
		{name: "httpd", image: "httpd:2.4", want: builtinProgram("httpd")},
		{name: "bootcamp", image: bootcamp, want: builtinProgram("kubernetes-bootcamp", "server.js")},
		{name: "bootcamp any tag", image: "gcr.io/google-samples/kubernetes-bootcamp", want: builtinProgram("kubernetes-bootcamp", "server.js")},
		{name: "bootcamp v2", image: "docker.io/jocatalin/kubernetes-bootcamp:v2", want: builtinProgram("kubernetes-bootcamp", "--response-version=2", "server.js")},
		{name: "agnhost default", image: agnhost, want: builtinProgram("agnhost", "pause")},
		{name: "old agnhost registry", image: "gcr.io/kubernetes-e2e-test-images/agnhost:2.8", want: builtinProgram("agnhost", "pause")},
		{name: "pause", image: "registry.k8s.io/pause:3.10", want: builtinProgram("pause")},
		{name: "old pause", image: "k8s.gcr.io/google_containers/pause:3.1", want: builtinProgram("pause")},

		// args replace the image's CMD.
		{name: "agnhost args", image: agnhost, args: []string{"netexec", "--http-port=8080", "--udp-port=8081"},
			want: builtinProgram("agnhost", "netexec", "--http-port=8080", "--udp-port=8081")},
		{name: "nginx args through the entrypoint", image: "nginx", args: []string{"nginx", "-g", "daemon off; worker_processes 2;"},
			want: builtinProgram("nginx", "-g", "daemon off; worker_processes 2;")},
		{name: "nginx args run by the entrypoint", image: "nginx", args: []string{"sh", "-c", "echo hi"},
			want: runtime.Program{Path: "/usr/bin/sh", Args: []string{"-c", "echo hi"}}},
		{name: "httpd args", image: "httpd", args: []string{"httpd-foreground", "-DX"}, want: builtinProgram("httpd", "-DX")},

		// command replaces the entrypoint: the image's programs are the built-in,
		// everything else comes from the machine.
		{name: "agnhost command", image: agnhost, command: []string{"/agnhost", "connect", "10.0.0.1:80", "--timeout=1s"},
			want: builtinProgram("agnhost", "connect", "10.0.0.1:80", "--timeout=1s")},
		{name: "agnhost command and args", image: agnhost, command: []string{"/agnhost"}, args: []string{"serve-hostname", "--port=8090"},
			want: builtinProgram("agnhost", "serve-hostname", "--port=8090")},
		{name: "agnhost by name", image: agnhost, command: []string{"agnhost", "porter"}, want: builtinProgram("agnhost", "porter")},
		{name: "agnhost drops CMD", image: agnhost, command: []string{"/agnhost"}, want: builtinProgram("agnhost")},
		{name: "agnhost shell", image: agnhost, command: []string{"sh", "-c", "echo hostName | nc -u 10.0.0.1 8081"},
			want: runtime.Program{Path: "/usr/bin/sh", Args: []string{"-c", "echo hostName | nc -u 10.0.0.1 8081"}}},
		{name: "nginx command", image: "nginx", command: []string{"/usr/sbin/nginx", "-g", "daemon off;"}, want: nginxDefault},
		{name: "nginx command with args", image: "nginx", command: []string{"nginx"}, args: []string{"-v"}, want: builtinProgram("nginx", "-v")},
		{name: "nginx entrypoint command", image: "nginx", command: []string{"/docker-entrypoint.sh", "nginx", "-g", "daemon off;"}, want: nginxDefault},
		{name: "nginx entrypoint alone", image: "nginx", command: []string{"/docker-entrypoint.sh"}, wantErr: ErrNoCommand},
		{name: "pause command", image: "registry.k8s.io/pause:3.10", command: []string{"/pause"}, want: builtinProgram("pause")},
		{name: "bootcamp node", image: bootcamp, command: []string{"node", "server.js"}, want: builtinProgram("kubernetes-bootcamp", "server.js")},
		{name: "program not on the machine", image: "nginx", command: []string{"wget", "-qO-", "http://x"}, wantErr: ErrProgramNotFound,
			errHas: []string{`"wget"`, "install it on the machine"}},
		{name: "absolute path found by name", image: "nginx", command: []string{"/usr/local/bin/curl", "-s", "x"},
			want: runtime.Program{Path: "/usr/bin/curl", Args: []string{"-s", "x"}}},

		// Tool images: their real CMD, from the machine.
		{name: "busybox", image: "busybox", want: runtime.Program{Path: "/usr/bin/sh", Args: []string{}}},
		{name: "busybox command", image: "busybox:1.36", command: []string{"sleep", "3600"}, want: runtime.Program{Path: "/usr/bin/sleep", Args: []string{"3600"}}},
		{name: "e2e busybox", image: "registry.k8s.io/e2e-test-images/busybox:1.37.0-2", args: []string{"sleep", "10"},
			want: runtime.Program{Path: "/usr/bin/sleep", Args: []string{"10"}}},
		{name: "alpine", image: "alpine:3.20", want: runtime.Program{Path: "/bin/sh", Args: []string{}}},
		{name: "ubuntu", image: "ubuntu", want: runtime.Program{Path: "/bin/bash", Args: []string{}}},
		{name: "debian", image: "debian:bookworm", want: runtime.Program{Path: "/usr/bin/bash", Args: []string{}}},
		{name: "curl image flags", image: "curlimages/curl:8.9.1", args: []string{"-s", "http://x"},
			want: runtime.Program{Path: "/usr/bin/curl", Args: []string{"-s", "http://x"}}},
		{name: "curl image command", image: "curlimages/curl", args: []string{"sh", "-c", "sleep 1"},
			want: runtime.Program{Path: "/usr/bin/sh", Args: []string{"-c", "sleep 1"}}},
		{name: "jessie-dnsutils", image: "registry.k8s.io/e2e-test-images/jessie-dnsutils:1.7", command: []string{"sh", "-c", "dig x"},
			want: runtime.Program{Path: "/usr/bin/sh", Args: []string{"-c", "dig x"}}},
		{name: "glibc-dns-testing", image: "registry.k8s.io/e2e-test-images/glibc-dns-testing:2.1.1", want: runtime.Program{Path: "/usr/bin/bash", Args: []string{}}},

		// Package managers, in any image.
		{name: "apk", image: "busybox", command: []string{"apk", "add", "curl"}, want: builtinProgram("apk", "add", "curl")},
		{name: "apk path", image: "alpine", command: []string{"/sbin/apk", "add", "--no-cache", "curl"}, want: builtinProgram("apk", "add", "--no-cache", "curl")},
		{name: "apt-get", image: "ubuntu", command: []string{"apt-get", "install", "-y", "dnsutils"}, want: builtinProgram("apt-get", "install", "-y", "dnsutils")},
		{name: "yum in nginx", image: "nginx", command: []string{"yum", "install", "curl"}, want: builtinProgram("yum", "install", "curl")},
		{name: "apk in unknown image", image: "example.com/unknown", command: []string{"apk", "add", "curl"}, want: builtinProgram("apk", "add", "curl")},

		// Other images: only with a command.
		{name: "unknown image", image: "example.com/unknown:1.0", wantErr: ErrUnknownImage,
			errHas: []string{`"example.com/unknown:1.0"`, "nginx", "registry.k8s.io/e2e-test-images/agnhost", "busybox", "command:", "--image-map"}},
		{name: "unknown image with args only", image: "redis", args: []string{"redis-server"}, wantErr: ErrUnknownImage},
		{name: "unknown image with command", image: "redis:7", command: []string{"sleep"}, args: []string{"60"},
			want: runtime.Program{Path: "/usr/bin/sleep", Args: []string{"60"}}},
		{name: "kubernetes-bootcamp without its registry is not the bootcamp", image: "kubernetes-bootcamp", wantErr: ErrUnknownImage},

		// --image-map.
		{name: "mapped", image: "example.com/team/app:1.2", want: runtime.Program{Path: "/opt/app/server", Args: []string{}}},
		{name: "mapped args", image: "example.com/team/app", args: []string{"--port=80"}, want: runtime.Program{Path: "/opt/app/server", Args: []string{"--port=80"}}},
		{name: "mapped own program", image: "example.com/team/app", command: []string{"server", "-v"}, want: runtime.Program{Path: "/opt/app/server", Args: []string{"-v"}}},
		{name: "mapped other command", image: "example.com/team/app", command: []string{"sh"}, want: runtime.Program{Path: "/usr/bin/sh", Args: []string{}}},
		{name: "mapped tag wins over built-in", image: "nginx:custom", want: runtime.Program{Path: "/usr/bin/app", Args: []string{}}},
		{name: "other tag stays built-in", image: "nginx:1.25", want: nginxDefault},
		{name: "mapped by tag", image: "example.com/tagged:v3", want: runtime.Program{Path: "/usr/bin/sleep", Args: []string{}}},
		{name: "unmapped tag", image: "example.com/tagged:v1", wantErr: ErrUnknownImage},
		{name: "mapped program missing", image: "example.com/nothing:any", wantErr: ErrProgramNotFound},

		// Malformed references.
		{name: "empty", image: "", wantErr: ErrInvalidImageName},
		{name: "upper case", image: "NGINX", wantErr: ErrInvalidImageName},
		{name: "space", image: "nginx latest", wantErr: ErrInvalidImageName},
		{name: "empty tag", image: "nginx:", wantErr: ErrInvalidImageName},
		{name: "bad digest", image: "nginx@1234", wantErr: ErrInvalidImageName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Resolve(tc.image, tc.command, tc.args)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Resolve(%q, %q, %q) = %v, %v; want error %v", tc.image, tc.command, tc.args, got, err, tc.wantErr)
				}
				for _, w := range tc.errHas {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q, %q, %q): %v", tc.image, tc.command, tc.args, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Resolve(%q, %q, %q) (-want +got):\n%s", tc.image, tc.command, tc.args, diff)
			}
		})
	}
}

func TestResolveNeedsSelf(t *testing.T) {
	_, err := Resolver{LookPath: machineLookPath}.Resolve("nginx", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "Self") {
		t.Fatalf("Resolve without Self = %v, want an error that names Self", err)
	}
	// Programs of the machine need no Self.
	if _, err := (Resolver{LookPath: machineLookPath}).Resolve("busybox", nil, nil); err != nil {
		t.Fatalf("Resolve(busybox) without Self: %v", err)
	}
}

func TestResolveBadMap(t *testing.T) {
	r := Resolver{Self: self, LookPath: machineLookPath, Maps: map[string]string{"Bad Image": "/x"}}
	if _, err := r.Resolve("nginx", nil, nil); !errors.Is(err, ErrInvalidImageName) {
		t.Fatalf("Resolve with a malformed map = %v, want ErrInvalidImageName", err)
	}
}

func TestResolveDoesNotAlias(t *testing.T) {
	// The program's args must not share memory with the caller's slices.
	command := []string{"sleep", "1"}
	got, err := Resolver{LookPath: machineLookPath}.Resolve("busybox", command, nil)
	if err != nil {
		t.Fatal(err)
	}
	got.Args[0] = "changed"
	if command[1] != "1" {
		t.Fatalf("Resolve's result aliases the command: %q", command)
	}
}

func TestParseImageMap(t *testing.T) {
	got, err := ParseImageMap([]string{"example.com/app=/opt/app", "nginx:custom=my-nginx"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"example.com/app": "/opt/app", "nginx:custom": "my-nginx"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseImageMap (-want +got):\n%s", diff)
	}
	for _, bad := range [][]string{
		{"no-equals"},
		{"=/opt/app"},
		{"app="},
		{"Bad Image=/x"},
		{"app=/a", "app=/b"},
	} {
		if _, err := ParseImageMap(bad); err == nil {
			t.Errorf("ParseImageMap(%q) succeeded, want an error", bad)
		}
	}
}

func TestPrograms(t *testing.T) {
	got := Programs()
	for _, want := range []string{ProgramNginx, ProgramHTTPD, ProgramBootcamp, ProgramAgnhost, ProgramPause, ProgramAPK, "apt-get"} {
		if !strings.Contains(" "+strings.Join(got, " ")+" ", " "+want+" ") {
			t.Errorf("Programs() = %q, missing %q", got, want)
		}
	}
}

func TestRunUnknownProgram(t *testing.T) {
	h := newHarness(t)
	if code := h.run("no-such-image"); code != 127 {
		t.Fatalf("exit code %d, want 127", code)
	}
	h.stderr.waitFor(t, `no built-in program "no-such-image"`)
}
