package openapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	crud    = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
	crudNoC = []string{"get", "list", "watch", "create", "update", "patch", "delete"}
)

// testGroups is a kube-apiserver-like set of served resources.
func testGroups() map[schema.GroupVersion][]Resource {
	return map[schema.GroupVersion][]Resource{
		{Version: "v1"}: {
			{Name: "pods", Kind: "Pod", Namespaced: true, Object: &corev1.Pod{}, List: &corev1.PodList{}, Verbs: crud,
				Subresources: []string{"status", "binding", "eviction", "log", "exec", "attach", "portforward", "proxy", "ephemeralcontainers", "resize"}},
			{Name: "services", Kind: "Service", Namespaced: true, Object: &corev1.Service{}, List: &corev1.ServiceList{}, Verbs: crud, Subresources: []string{"status", "proxy"}},
			{Name: "configmaps", Kind: "ConfigMap", Namespaced: true, Object: &corev1.ConfigMap{}, List: &corev1.ConfigMapList{}, Verbs: crud},
			{Name: "secrets", Kind: "Secret", Namespaced: true, Object: &corev1.Secret{}, List: &corev1.SecretList{}, Verbs: crud},
			{Name: "namespaces", Kind: "Namespace", Object: &corev1.Namespace{}, List: &corev1.NamespaceList{}, Verbs: crudNoC, Subresources: []string{"status", "finalize"}},
			{Name: "nodes", Kind: "Node", Object: &corev1.Node{}, List: &corev1.NodeList{}, Verbs: crud, Subresources: []string{"status", "proxy"}},
			{Name: "endpoints", Kind: "Endpoints", Namespaced: true, Object: &corev1.Endpoints{}, List: &corev1.EndpointsList{}, Verbs: crud},
			{Name: "events", Kind: "Event", Namespaced: true, Object: &corev1.Event{}, List: &corev1.EventList{}, Verbs: crud},
			{Name: "serviceaccounts", Kind: "ServiceAccount", Namespaced: true, Object: &corev1.ServiceAccount{}, List: &corev1.ServiceAccountList{}, Verbs: crud, Subresources: []string{"token"}},
			{Name: "persistentvolumes", Kind: "PersistentVolume", Object: &corev1.PersistentVolume{}, List: &corev1.PersistentVolumeList{}, Verbs: crud, Subresources: []string{"status"}},
			{Name: "persistentvolumeclaims", Kind: "PersistentVolumeClaim", Namespaced: true, Object: &corev1.PersistentVolumeClaim{}, List: &corev1.PersistentVolumeClaimList{}, Verbs: crud, Subresources: []string{"status"}},
			{Name: "replicationcontrollers", Kind: "ReplicationController", Namespaced: true, Object: &corev1.ReplicationController{}, List: &corev1.ReplicationControllerList{}, Verbs: crud, Subresources: []string{"status", "scale"}},
			{Name: "resourcequotas", Kind: "ResourceQuota", Namespaced: true, Object: &corev1.ResourceQuota{}, List: &corev1.ResourceQuotaList{}, Verbs: crud, Subresources: []string{"status"}},
			{Name: "limitranges", Kind: "LimitRange", Namespaced: true, Object: &corev1.LimitRange{}, List: &corev1.LimitRangeList{}, Verbs: crud},
			{Name: "podtemplates", Kind: "PodTemplate", Namespaced: true, Object: &corev1.PodTemplate{}, List: &corev1.PodTemplateList{}, Verbs: crud},
		},
		{Group: "apps", Version: "v1"}: {
			{Name: "deployments", Kind: "Deployment", Namespaced: true, Object: &appsv1.Deployment{}, List: &appsv1.DeploymentList{}, Verbs: crud, Subresources: []string{"status", "scale"}},
			{Name: "statefulsets", Kind: "StatefulSet", Namespaced: true, Object: &appsv1.StatefulSet{}, List: &appsv1.StatefulSetList{}, Verbs: crud, Subresources: []string{"status", "scale"}},
			{Name: "daemonsets", Kind: "DaemonSet", Namespaced: true, Object: &appsv1.DaemonSet{}, List: &appsv1.DaemonSetList{}, Verbs: crud, Subresources: []string{"status"}},
			{Name: "replicasets", Kind: "ReplicaSet", Namespaced: true, Object: &appsv1.ReplicaSet{}, List: &appsv1.ReplicaSetList{}, Verbs: crud, Subresources: []string{"status", "scale"}},
			{Name: "controllerrevisions", Kind: "ControllerRevision", Namespaced: true, Object: &appsv1.ControllerRevision{}, List: &appsv1.ControllerRevisionList{}, Verbs: crud},
		},
		{Group: "batch", Version: "v1"}: {
			{Name: "jobs", Kind: "Job", Namespaced: true, Object: &batchv1.Job{}, List: &batchv1.JobList{}, Verbs: crud, Subresources: []string{"status"}},
			{Name: "cronjobs", Kind: "CronJob", Namespaced: true, Object: &batchv1.CronJob{}, List: &batchv1.CronJobList{}, Verbs: crud, Subresources: []string{"status"}},
		},
		{Group: "networking.k8s.io", Version: "v1"}: {
			{Name: "ingresses", Kind: "Ingress", Namespaced: true, Object: &networkingv1.Ingress{}, List: &networkingv1.IngressList{}, Verbs: crud, Subresources: []string{"status"}},
			{Name: "networkpolicies", Kind: "NetworkPolicy", Namespaced: true, Object: &networkingv1.NetworkPolicy{}, List: &networkingv1.NetworkPolicyList{}, Verbs: crud},
			{Name: "ingressclasses", Kind: "IngressClass", Object: &networkingv1.IngressClass{}, List: &networkingv1.IngressClassList{}, Verbs: crud},
		},
		{Group: "rbac.authorization.k8s.io", Version: "v1"}: {
			{Name: "roles", Kind: "Role", Namespaced: true, Object: &rbacv1.Role{}, List: &rbacv1.RoleList{}, Verbs: crud},
			{Name: "rolebindings", Kind: "RoleBinding", Namespaced: true, Object: &rbacv1.RoleBinding{}, List: &rbacv1.RoleBindingList{}, Verbs: crud},
			{Name: "clusterroles", Kind: "ClusterRole", Object: &rbacv1.ClusterRole{}, List: &rbacv1.ClusterRoleList{}, Verbs: crud},
			{Name: "clusterrolebindings", Kind: "ClusterRoleBinding", Object: &rbacv1.ClusterRoleBinding{}, List: &rbacv1.ClusterRoleBindingList{}, Verbs: crud},
		},
		{Group: "coordination.k8s.io", Version: "v1"}: {
			{Name: "leases", Kind: "Lease", Namespaced: true, Object: &coordinationv1.Lease{}, List: &coordinationv1.LeaseList{}, Verbs: crud},
		},
		{Group: "discovery.k8s.io", Version: "v1"}: {
			{Name: "endpointslices", Kind: "EndpointSlice", Namespaced: true, Object: &discoveryv1.EndpointSlice{}, List: &discoveryv1.EndpointSliceList{}, Verbs: crud},
		},
		{Group: "policy", Version: "v1"}: {
			{Name: "poddisruptionbudgets", Kind: "PodDisruptionBudget", Namespaced: true, Object: &policyv1.PodDisruptionBudget{}, List: &policyv1.PodDisruptionBudgetList{}, Verbs: crud, Subresources: []string{"status"}},
		},
	}
}

var (
	docsOnce sync.Once
	docsAll  map[string][]byte
	docsErr  error
)

// testDocs returns the documents of testGroups, keyed by index path.
func testDocs(t testing.TB) map[string][]byte {
	t.Helper()
	docsOnce.Do(func() {
		docsAll = map[string][]byte{}
		for gv, rs := range testGroups() {
			b, err := Document(gv, rs)
			if err != nil {
				docsErr = err
				return
			}
			docsAll[GroupVersionPath(gv)] = b
		}
	})
	if docsErr != nil {
		t.Fatal(docsErr)
	}
	return docsAll
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// newFakeAPIServer serves what kubectl explain needs: discovery (/version,
// /api, /api/v1, /apis, /apis/<g>/<v>) and /openapi/v3. It listens on
// loopback only (httptest binds 127.0.0.1) and records the request paths.
func newFakeAPIServer(t *testing.T) (*httptest.Server, *[]string) {
	t.Helper()
	docs := testDocs(t)
	index, err := Index(docs)
	if err != nil {
		t.Fatal(err)
	}
	groups := testGroups()
	resourceList := func(gv schema.GroupVersion) *metav1.APIResourceList {
		l := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
		for _, r := range groups[gv] {
			l.APIResources = append(l.APIResources, metav1.APIResource{Name: r.Name, Kind: r.Kind, Namespaced: r.Namespaced, Verbs: r.Verbs})
			for _, s := range r.Subresources {
				l.APIResources = append(l.APIResources, metav1.APIResource{Name: r.Name + "/" + s, Kind: r.Kind, Namespaced: r.Namespaced, Verbs: []string{"get"}})
			}
		}
		return l
	}
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.RequestURI())
		mu.Unlock()
		p := r.URL.Path
		switch {
		case p == "/version":
			writeJSON(w, map[string]string{"major": "1", "minor": "32", "gitVersion": "v1.32.0", "platform": "linux/amd64"})
		case p == "/api":
			writeJSON(w, &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
				ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}}})
		case p == "/api/v1":
			writeJSON(w, resourceList(schema.GroupVersion{Version: "v1"}))
		case p == "/apis":
			l := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
			var gvs []schema.GroupVersion
			for gv := range groups {
				if gv.Group != "" {
					gvs = append(gvs, gv)
				}
			}
			sort.Slice(gvs, func(i, j int) bool { return gvs[i].Group < gvs[j].Group })
			for _, gv := range gvs {
				v := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
				l.Groups = append(l.Groups, metav1.APIGroup{Name: gv.Group, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v})
			}
			writeJSON(w, l)
		case strings.HasPrefix(p, "/apis/"):
			parts := strings.Split(strings.TrimPrefix(p, "/apis/"), "/")
			gv := schema.GroupVersion{Group: parts[0]}
			if len(parts) == 2 {
				gv.Version = parts[1]
			}
			if _, ok := groups[gv]; !ok {
				http.NotFound(w, r)
				return
			}
			writeJSON(w, resourceList(gv))
		case p == "/openapi/v3":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(index)
		case strings.HasPrefix(p, "/openapi/v3/"):
			doc, ok := docs[strings.TrimPrefix(p, "/openapi/v3/")]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			if r.URL.Query().Get("hash") != "" {
				w.Header().Set("Cache-Control", "public, immutable")
			}
			_, _ = w.Write(doc)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}
