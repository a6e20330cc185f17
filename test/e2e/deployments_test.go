package e2e

import (
	"regexp"
	"strings"
	"testing"
)

// checkDeployRow checks `kubectl get deploy` for the single Deployment nginx with the
// given desired replicas. READY, UP-TO-DATE and AVAILABLE lag behind in real clusters
// too (they come from the controllers), so any value up to the desired count is fine.
func checkDeployRow(t *testing.T, out string, replicas string) {
	t.Helper()
	n := "[0-" + replicas + "]"
	want := regexp.MustCompile(`^NAME    READY   UP-TO-DATE   AVAILABLE   AGE\n` +
		`nginx   ` + n + `/` + replicas + `     ` + n + `            ` + n + `           \d+[smh]\n$`)
	if !want.MatchString(out) {
		t.Errorf("kubectl get deploy printed:\n%s\nwant (regexp):\n%s", out, want)
	}
}

// splitBlocks splits `kubectl get all` output into its tables.
func splitBlocks(out string) []string {
	var blocks []string
	for _, b := range strings.Split(strings.TrimRight(out, "\n"), "\n\n") {
		if b != "" {
			blocks = append(blocks, b+"\n")
		}
	}
	return blocks
}

// TestDeployments: create deployment (a protobuf request body from kubectl 1.32), get,
// the scale subresource, get all, the seeds' expose flows, delete.
func TestDeployments(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := s.kubectl(t)

	t.Run("create", func(t *testing.T) {
		k := k.on(t)
		if !k.expectOut("deployment.apps/nginx created\n", "create", "deployment", "nginx", "--image=nginx", "--replicas=2") {
			t.FailNow()
		}
		if out, ok := k.try("get", "deploy"); ok {
			checkDeployRow(t, out, "2")
		}
		// Defaults that kube-apiserver fills in.
		k.expectOut("RollingUpdate 25% 25% 10 600 app=nginx Always Always ClusterFirst default-scheduler 30 File",
			"get", "deploy", "nginx", "-o", "jsonpath={.spec.strategy.type} {.spec.strategy.rollingUpdate.maxSurge} "+
				"{.spec.strategy.rollingUpdate.maxUnavailable} {.spec.revisionHistoryLimit} {.spec.progressDeadlineSeconds} "+
				"app={.spec.selector.matchLabels.app} {.spec.template.spec.containers[0].imagePullPolicy} "+
				"{.spec.template.spec.restartPolicy} {.spec.template.spec.dnsPolicy} {.spec.template.spec.schedulerName} "+
				"{.spec.template.spec.terminationGracePeriodSeconds} {.spec.template.spec.containers[0].terminationMessagePolicy}")
		// kubectl create deployment wraps the server's AlreadyExists message itself.
		k.expectErr("error: failed to create deployment: deployments.apps \"nginx\" already exists\n",
			"create", "deployment", "nginx", "--image=nginx")
	})

	t.Run("scale", func(t *testing.T) {
		k := k.on(t)
		k.expectOut("deployment.apps/nginx scaled\n", "scale", "deployment", "nginx", "--replicas=3")
		k.expectOut("3 2", "get", "deploy", "nginx", "-o", "jsonpath={.spec.replicas} {.metadata.generation}")
		if out, ok := k.try("get", "deploy"); ok {
			checkDeployRow(t, out, "3")
		}
		// --current-replicas goes through GET and PUT of the Scale.
		k.expectOut("deployment.apps/nginx scaled\n", "scale", "deployment", "nginx", "--current-replicas=3", "--replicas=2")
		r := k.run("scale", "deployment", "nginx", "--current-replicas=3", "--replicas=1")
		if r.code == 0 || !strings.HasPrefix(r.stderr, "error: Expected replicas to be 3, was 2") {
			t.Errorf("scale with a wrong --current-replicas: want \"error: Expected replicas to be 3, was 2\"; got:\n%s", r)
		}
		k.expectOut("deployment.apps/nginx scaled\n", "scale", "deployment", "nginx", "--replicas=3")
	})

	t.Run("get all", func(t *testing.T) {
		k := k.on(t)
		out, ok := k.try("get", "all")
		if !ok {
			return
		}
		// Real clusters also list the ReplicaSet and its Pods here; they come from the
		// deployment and replicaset controllers, which this server does not run yet.
		var sawSvc, sawDeploy bool
		for _, b := range splitBlocks(out) {
			tb, err := parseTable(b)
			if err != nil {
				t.Error(err)
				continue
			}
			switch strings.Join(tb.header, " ") {
			case "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE":
				sawSvc = true
				r, found := tb.row("service/kubernetes")
				if !found {
					t.Errorf("kubectl get all: no service/kubernetes row:\n%s", out)
					continue
				}
				checkCells(t, r, map[string]string{"TYPE": "ClusterIP", "EXTERNAL-IP": "<none>", "PORT(S)": "443/TCP"})
			case "NAME READY UP-TO-DATE AVAILABLE AGE":
				sawDeploy = true
				r, found := tb.row("deployment.apps/nginx")
				if !found || len(tb.rows) != 1 {
					t.Errorf("kubectl get all: want one row deployment.apps/nginx:\n%s", out)
					continue
				}
				checkCells(t, r, map[string]string{"READY": "~^[0-3]/3$", "UP-TO-DATE": "~^[0-3]$", "AVAILABLE": "~^[0-3]$"})
			}
		}
		if !sawSvc || !sawDeploy {
			t.Errorf("kubectl get all: want a services table and a deployments table; got:\n%s", out)
		}
	})

	// Seed 000: kubectl expose deployment nginx --port=80 --type=NodePort; kubectl get svc.
	t.Run("seed 000 expose", func(t *testing.T) {
		k := k.on(t)
		k.expectOut("service/nginx exposed\n", "expose", "deployment", "nginx", "--port=80", "--type=NodePort")
		if out, ok := k.try("get", "svc", "nginx"); ok {
			checkSvcRows(t, out, []svcWant{{"nginx", "NodePort", "", "<none>", "80:{np}/TCP"}})
		}
		k.expectOut("app=nginx app=nginx 80 TCP", "get", "svc", "nginx", "-o",
			"jsonpath=app={.spec.selector.app} app={.metadata.labels.app} {.spec.ports[0].targetPort} {.spec.ports[0].protocol}")
	})

	// Seed 002's self quiz.
	t.Run("seed 002 expose", func(t *testing.T) {
		k := k.on(t)
		k.expectOut("deployment.apps/kubernetes-bootcamp created\n",
			"create", "deployment", "kubernetes-bootcamp", "--image=gcr.io/google-samples/kubernetes-bootcamp:v1")
		k.expectOut("service/kubernetes-bootcamp exposed\n", "expose", "deployment/kubernetes-bootcamp", "--type=NodePort", "--port", "8080")
		if out, ok := k.try("get", "svc", "kubernetes-bootcamp"); ok {
			checkSvcRows(t, out, []svcWant{{"kubernetes-bootcamp", "NodePort", "", "<none>", "8080:{np}/TCP"}})
		}
		k.expectOut("deployment.apps/kubernetes-bootcamp scaled\n", "scale", "deployment", "kubernetes-bootcamp", "--replicas=5")
		k.expectOut("deployment.apps/kubernetes-bootcamp scaled\n", "scale", "deployment", "kubernetes-bootcamp", "--replicas=2")
		k.expectOut("service \"kubernetes-bootcamp\" deleted\n", "delete", "svc", "kubernetes-bootcamp")
		k.expectOut("service/kubernetes-bootcamp exposed\n", "expose", "deployment/kubernetes-bootcamp", "--port", "8080")
		if out, ok := k.try("get", "svc", "kubernetes-bootcamp"); ok {
			checkSvcRows(t, out, []svcWant{{"kubernetes-bootcamp", "ClusterIP", "", "<none>", "8080/TCP"}})
		}
		k.expectOut("deployment.apps \"kubernetes-bootcamp\" deleted\n", "delete", "deployment", "kubernetes-bootcamp")
	})

	t.Run("delete", func(t *testing.T) {
		k := k.on(t)
		k.expectOut("deployment.apps \"nginx\" deleted\n", "delete", "deployment", "nginx")
		r := k.run("get", "deploy")
		if r.code != 0 || r.stdout != "" || r.stderr != "No resources found in default namespace.\n" {
			t.Errorf("get deploy after delete:\n%s", r)
		}
		k.expectErr("Error from server (NotFound): deployments.apps \"nginx\" not found\n", "delete", "deployment", "nginx")
	})
}
