package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// readTree returns every file under dir as path → "MODE content".
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = fi.Mode().Perm().String() + " " + string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSetupVolumes(t *testing.T) {
	podDir := t.TempDir()
	hostDir := filepath.Join(t.TempDir(), "host", "data")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1", Labels: map[string]string{"app": "x", "tier": "web"}},
		Spec: corev1.PodSpec{
			NodeName: "node-1", ServiceAccountName: "sa",
			Containers: []corev1.Container{{Name: "c"}},
			Volumes: []corev1.Volume{
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
				{Name: "cfg-items", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptr.To(int32(0o600)),
					Items: []corev1.KeyToPath{{Key: "a.conf", Path: "sub/renamed.conf", Mode: ptr.To(int32(0o400))}, {Key: "b.conf", Path: "b"}}}}},
				{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
				{Name: "opt", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope", Optional: ptr.To(true)}}},
				{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
					{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
				}}}},
				{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"},
						Items: []corev1.KeyToPath{{Key: "a.conf", Path: "a.conf"}}}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
						{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", Audience: "api"}},
				}}}},
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir,
					Type: ptr.To(corev1.HostPathDirectoryOrCreate)}}},
			},
		},
	}
	var tokenReq *authenticationv1.TokenRequest
	src := volumeSource{
		Pod: pod, PodDir: podDir, PodIPs: []string{"10.244.0.2"}, HostIPs: []string{"192.0.2.10"},
		ConfigMap: func(_ context.Context, name string) (*corev1.ConfigMap, error) {
			if name != "cfg" {
				return nil, apierrors.NewNotFound(corev1.Resource("configmaps"), name)
			}
			return &corev1.ConfigMap{Data: map[string]string{"a.conf": "A", "b.conf": "B"}, BinaryData: map[string][]byte{"bin": {1, 2}}}, nil
		},
		Secret: func(_ context.Context, name string) (*corev1.Secret, error) {
			if name != "creds" {
				return nil, apierrors.NewNotFound(corev1.Resource("secrets"), name)
			}
			return &corev1.Secret{Data: map[string][]byte{"password": []byte("s3cret")}}, nil
		},
		Token: func(_ context.Context, req *authenticationv1.TokenRequest) (string, error) {
			tokenReq = req
			return "jwt", nil
		},
	}
	paths, err := setupVolumes(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	vol := func(plugin, name string) string { return filepath.Join(podDir, "volumes", plugin, name) }
	wantPaths := map[string]string{
		"scratch": vol("kubernetes.io~empty-dir", "scratch"), "cfg": vol("kubernetes.io~configmap", "cfg"),
		"cfg-items": vol("kubernetes.io~configmap", "cfg-items"), "creds": vol("kubernetes.io~secret", "creds"),
		"opt": vol("kubernetes.io~secret", "opt"), "info": vol("kubernetes.io~downward-api", "info"),
		"all": vol("kubernetes.io~projected", "all"), "host": hostDir,
	}
	if diff := cmp.Diff(wantPaths, paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
	for name, want := range map[string]map[string]string{
		"cfg":       {"a.conf": "-rw-r--r-- A", "b.conf": "-rw-r--r-- B", "bin": "-rw-r--r-- \x01\x02"},
		"cfg-items": {"sub/renamed.conf": "-r-------- A", "b": "-rw------- B"},
		"creds":     {"password": "-rw-r--r-- s3cret"},
		"opt":       {},
		"info":      {"labels": "-rw-r--r-- app=\"x\"\ntier=\"web\"", "name": "-rw-r--r-- p"},
		"all":       {"a.conf": "-rw-r--r-- A", "password": "-rw-r--r-- s3cret", "ns": "-rw-r--r-- ns", "token": "-rw-r--r-- jwt"},
	} {
		if diff := cmp.Diff(want, readTree(t, paths[name])); diff != "" {
			t.Errorf("volume %s (-want +got):\n%s", name, diff)
		}
	}
	if fi, err := os.Stat(paths["scratch"]); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o777 {
		t.Errorf("emptyDir: %v %v", fi, err)
	}
	if fi, err := os.Stat(hostDir); err != nil || !fi.IsDir() {
		t.Errorf("hostPath DirectoryOrCreate: %v", err)
	}
	if tokenReq == nil || tokenReq.Spec.BoundObjectRef.UID != "uid-1" || len(tokenReq.Spec.Audiences) != 1 || tokenReq.Spec.Audiences[0] != "api" {
		t.Errorf("token request %+v", tokenReq)
	}

	// a file that left the ConfigMap leaves the volume
	src.ConfigMap = func(context.Context, string) (*corev1.ConfigMap, error) {
		return &corev1.ConfigMap{Data: map[string]string{"a.conf": "A2"}}, nil
	}
	src.Pod.Spec.Volumes = src.Pod.Spec.Volumes[1:2]
	if _, err := setupVolumes(t.Context(), src); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"a.conf": "-rw-r--r-- A2"}, readTree(t, paths["cfg"])); diff != "" {
		t.Errorf("updated volume (-want +got):\n%s", diff)
	}
}

func TestSetupVolumesErrors(t *testing.T) {
	for _, tc := range []struct {
		line int
		name string
		vol  corev1.Volume
		want string
	}{
		{line: getLine(), name: "missing ConfigMap", vol: corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}}},
			want: `MountVolume.SetUp failed for volume "cfg" : configmaps "nope" not found`},
		{line: getLine(), name: "hostPath that is not a directory", vol: corev1.Volume{Name: "h", VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: "/nonexistent/kubesvc", Type: ptr.To(corev1.HostPathDirectory)}}},
			want: `MountVolume.SetUp failed for volume "h" : hostPath type check failed: /nonexistent/kubesvc is not a directory`},
		{line: getLine(), name: "unsupported type", vol: corev1.Volume{Name: "pvc", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}},
			want: `MountVolume.SetUp failed for volume "pvc" : volume type not supported by kubesvc: only emptyDir, configMap, secret, downwardAPI, projected and hostPath are`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{tc.vol}}}
			_, err := setupVolumes(t.Context(), volumeSource{Pod: pod, PodDir: t.TempDir(),
				ConfigMap: func(_ context.Context, name string) (*corev1.ConfigMap, error) {
					return nil, apierrors.NewNotFound(corev1.Resource("configmaps"), name)
				}})
			var ve *volumeError
			if !errors.As(err, &ve) || err.Error() != tc.want {
				t.Errorf("line %d: error %v, want %q", tc.line, err, tc.want)
			}
		})
	}
}

func TestContainerMounts(t *testing.T) {
	vols := map[string]string{"data": t.TempDir(), "cfg": "/cfg"}
	c := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{
		{Name: "data", MountPath: "/data", SubPath: "logs"},
		{Name: "data", MountPath: "/per-pod", SubPathExpr: "$(POD_NAME)"},
		{Name: "cfg", MountPath: "/etc/hosts", ReadOnly: true},
	}}
	env := []envVar{{Name: "POD_NAME", Value: "web-1"}}
	got, err := containerMounts(c, vols, "/root/pods/uid", env, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []runtime.Mount{
		{HostPath: filepath.Join(vols["data"], "logs"), ContainerPath: "/data"},
		{HostPath: filepath.Join(vols["data"], "web-1"), ContainerPath: "/per-pod"},
		{HostPath: "/cfg", ContainerPath: "/etc/hosts", ReadOnly: true},
		{HostPath: "/root/pods/uid/resolv.conf", ContainerPath: "/etc/resolv.conf"},
		{HostPath: "/root/pods/uid/hostname", ContainerPath: "/etc/hostname"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
	if fi, err := os.Stat(filepath.Join(vols["data"], "logs")); err != nil || !fi.IsDir() {
		t.Errorf("subPath not created: %v", err)
	}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/x", SubPath: "../escape"}}
	if _, err := containerMounts(c, vols, "/root/pods/uid", nil, false); err == nil || !strings.Contains(err.Error(), "relative path within the volume") {
		t.Errorf("a subPath leaving the volume: %v", err)
	}
}
