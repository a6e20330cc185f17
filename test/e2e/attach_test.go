package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// TestAttach is `kubectl attach` and `kubectl run -it --rm` through the API
// server and the node agent's kubelet server, over WebSocket (v5, translated to
// SPDY by the API server) and SPDY: a running pod's live output; a shell on a
// terminal typed into (-it); stdin that closes with the client's
// (stdinOnce); and the seeds' throwaway pod, deleted once its shell exits.
func TestAttach(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	if testing.Short() {
		t.Skip("runs kubesvc up with a real node")
	}
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) is not installed")
	}
	s := startUp(t)
	k := s.kubectl(t)
	applyYAML(t, k, attachManifests)
	k.ok("wait", "--for=condition=Ready", "pod/ticker", "--timeout=60s")

	for i, transport := range []string{"websocket", "spdy"} {
		t.Run(transport, func(t *testing.T) {
			k := k.on(t)
			if transport == "spdy" {
				k = k.withEnv("KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false")
			}
			t.Run("live output", func(t *testing.T) { checkAttachOutput(t, k.on(t)) })
			t.Run("attach -it", func(t *testing.T) { checkAttachTTY(t, k.on(t), fmt.Sprintf("shell-%d", i)) })
			t.Run("attach -i stdinOnce", func(t *testing.T) { checkAttachStdin(t, k.on(t), fmt.Sprintf("cat-%d", i)) })
			t.Run("run -it --rm", func(t *testing.T) { checkRunRm(t, k.on(t)) })
		})
	}
	t.Run("errors", func(t *testing.T) {
		k := k.on(t)
		k.expectErr("Error from server (NotFound): pods \"nope\" not found\n", "attach", "nope")
		k.expectErr("error: cannot attach to the container: container nope not found in pod ticker\n", "attach", "ticker", "-c", "nope")
	})
}

// checkAttachOutput: `kubectl attach ticker -c app` shows the lines the pod
// prints each second from now on.
func checkAttachOutput(t *testing.T, k *kubectl) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cmd := exec.CommandContext(ctx, k.bin, "attach", "ticker", "-c", "app")
	cmd.Dir, cmd.Env = pkgDir, k.environ()
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	tick := regexp.MustCompile(`(?m)^tick (\d+)$`)
	eventually(t, "three tick lines from kubectl attach", 20*time.Second, func() error {
		if n := len(tick.FindAllString(stdout.String(), -1)); n < 3 {
			return fmt.Errorf("%d lines:\n%s\nstderr:\n%s", n, stdout.String(), stderr.String())
		}
		return nil
	})
	// Consecutive lines: what the pod prints now, not its log from the start.
	m := tick.FindAllStringSubmatch(stdout.String(), -1)
	var first, last int
	fmt.Sscan(m[0][1], &first)
	fmt.Sscan(m[len(m)-1][1], &last)
	if last-first != len(m)-1 {
		t.Errorf("tick lines are not the consecutive live output:\n%s", stdout.String())
	}
	if first == 0 {
		t.Logf("the first line is tick 0: the pod had just started")
	}
}

// checkAttachTTY: `kubectl attach -it` to a pod whose container has stdin and
// a terminal; what is typed runs in its shell; `exit` ends the session and the
// container.
func checkAttachTTY(t *testing.T, k *kubectl, pod string) {
	applyYAML(t, k, fmt.Sprintf(shellManifest, pod))
	k.ok("wait", "--for=condition=Ready", "pod/"+pod, "--timeout=60s")
	term := startTerminal(t, k, k.bin+" attach -it "+pod)
	term.expect("If you don't see a command prompt, try pressing enter.", 30*time.Second)
	// kubectl attach sends the terminal's size plus one and then its size (to
	// make the program redraw) as its streams start, beside what is typed: a
	// line typed at once may run between the two (the shell printed "25 81"
	// in one CI run). So first a command whose output shows the shell is
	// reading what is typed ("re""ady": its echo does not match).
	term.typeLine(`echo re""ady`)
	term.expect("ready", 30*time.Second)
	term.typeLine("stty size; hostname; exit 0")
	term.expect("24 80\n", 30*time.Second)
	term.expect(pod+"\n", 10*time.Second)
	if code := term.wait(30 * time.Second); code != 0 {
		t.Errorf("kubectl attach -it %s: exit %d, want 0\n%s", pod, code, term.output())
	}
	eventually(t, "the pod to succeed", 30*time.Second, func() error {
		if phase := k.ok("get", "pod", pod, "-o", "jsonpath={.status.phase}"); phase != "Succeeded" {
			return fmt.Errorf("phase %s", phase)
		}
		return nil
	})
}

// checkAttachStdin: `echo ... | kubectl attach -i` to `cat` in a container
// with stdin and stdinOnce: cat reads what is sent, the end of it closes cat's
// stdin, cat exits, and the session ends.
func checkAttachStdin(t *testing.T, k *kubectl, pod string) {
	applyYAML(t, k, fmt.Sprintf(catManifest, pod))
	k.ok("wait", "--for=condition=Ready", "pod/"+pod, "--timeout=60s")
	r := runStdin(t, k, "through attach\n", "attach", "-i", pod)
	if r.code != 0 || !strings.Contains(r.stdout, "through attach\n") {
		t.Errorf("echo 'through attach' | kubectl attach -i %s: %s", pod, r)
	}
	eventually(t, "cat to exit with its stdin closed", 30*time.Second, func() error {
		if phase := k.ok("get", "pod", pod, "-o", "jsonpath={.status.phase}"); phase != "Succeeded" {
			return fmt.Errorf("phase %s", phase)
		}
		return nil
	})
}

// checkRunRm is the seeds' `kubectl run -it --rm tmp --image=busybox
// --restart=Never -- sh`, typing `hostname; exit`: the pod's name is printed,
// kubectl exits 0, and the pod is gone.
func checkRunRm(t *testing.T, k *kubectl) {
	term := startTerminal(t, k, k.bin+" run -it --rm tmp --image=busybox --restart=Never -- sh")
	term.expect("If you don't see a command prompt, try pressing enter.", 60*time.Second)
	term.typeLine("hostname; exit")
	term.expect("\ntmp\n", 30*time.Second)
	if code := term.wait(60 * time.Second); code != 0 {
		t.Errorf("kubectl run -it --rm tmp: exit %d, want 0\n%s", code, term.output())
	}
	if out := term.output(); !strings.Contains(out, `pod "tmp" deleted`) {
		t.Errorf("kubectl run -it --rm did not say it deleted the pod:\n%s", out)
	}
	eventually(t, "pod tmp to be gone", 30*time.Second, func() error {
		r := k.run("get", "pod", "tmp")
		if r.code == 0 || !strings.Contains(r.stderr, `pods "tmp" not found`) {
			return fmt.Errorf("%s", r)
		}
		return nil
	})
}

// attachManifests: a pod that prints a line a second.
const attachManifests = `apiVersion: v1
kind: Pod
metadata:
  name: ticker
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done"]
`

// shellManifest: a shell with stdin and a terminal (the name is the argument).
const shellManifest = `apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: shell
    image: busybox
    command: ["sh"]
    stdin: true
    stdinOnce: true
    tty: true
`

// catManifest: cat with stdin and stdinOnce (the name is the argument).
const catManifest = `apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: cat
    image: busybox
    command: ["cat"]
    stdin: true
    stdinOnce: true
`
