package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// A pod's volumes, prepared under RootDir/pods/<uid>/volumes/<plugin>/<name>/ with
// the kubelet's plugin directory names. emptyDir is a directory (also with medium
// Memory: no tmpfs is mounted); configMap, secret, downwardAPI and projected are
// files written from the API's objects, with items and modes honoured; hostPath is
// the node's path, checked or created per its type. Other volume types are not
// supported: the pod stays ContainerCreating with a FailedMount event saying so.

// Default file modes of the kubelet's volume plugins (the API defaults defaultMode
// to these too).
const (
	defaultVolumeFileMode = 0o644
	emptyDirMode          = 0o777
)

// errUnsupportedVolume is wrapped by the error of a volume type kubesvc cannot set up.
var errUnsupportedVolume = errors.New("volume type not supported by kubesvc")

// volumeDirName is the directory of a volume plugin under a pod's volumes/.
func volumeDirName(v *corev1.Volume) string {
	switch {
	case v.EmptyDir != nil:
		return "kubernetes.io~empty-dir"
	case v.ConfigMap != nil:
		return "kubernetes.io~configmap"
	case v.Secret != nil:
		return "kubernetes.io~secret"
	case v.DownwardAPI != nil:
		return "kubernetes.io~downward-api"
	case v.Projected != nil:
		return "kubernetes.io~projected"
	}
	return ""
}

// volumeSource is what setting up a volume needs from the agent.
type volumeSource struct {
	Pod             *corev1.Pod
	PodDir          string
	PodIPs, HostIPs []string
	Allocatable     corev1.ResourceList
	ConfigMap       func(ctx context.Context, name string) (*corev1.ConfigMap, error)
	Secret          func(ctx context.Context, name string) (*corev1.Secret, error)
	// Token requests a service account token for the pod.
	Token func(ctx context.Context, req *authenticationv1.TokenRequest) (string, error)
}

// volumeError is the failure to set up one volume; Error() is the kubelet's
// FailedMount message.
type volumeError struct {
	Volume string
	Err    error
}

func (e *volumeError) Error() string {
	return fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", e.Volume, e.Err)
}

func (e *volumeError) Unwrap() error { return e.Err }

// setupVolumes prepares every volume of the pod and returns the host path of each,
// by volume name. It stops at the first volume that fails, with a *volumeError.
func setupVolumes(ctx context.Context, src volumeSource) (map[string]string, error) {
	paths := map[string]string{}
	for i := range src.Pod.Spec.Volumes {
		v := &src.Pod.Spec.Volumes[i]
		p, err := setupVolume(ctx, src, v)
		if err != nil {
			return nil, &volumeError{Volume: v.Name, Err: err}
		}
		paths[v.Name] = p
	}
	return paths, nil
}

func setupVolume(ctx context.Context, src volumeSource, v *corev1.Volume) (string, error) {
	if v.HostPath != nil {
		return v.HostPath.Path, setupHostPath(v.HostPath)
	}
	plugin := volumeDirName(v)
	if plugin == "" {
		return "", fmt.Errorf("%w: only emptyDir, configMap, secret, downwardAPI, projected and hostPath are", errUnsupportedVolume)
	}
	dir := filepath.Join(src.PodDir, "volumes", plugin, v.Name)
	switch {
	case v.EmptyDir != nil:
		if err := os.MkdirAll(dir, emptyDirMode); err != nil {
			return "", err
		}
		return dir, os.Chmod(dir, emptyDirMode)
	case v.ConfigMap != nil:
		payload, err := configMapPayload(ctx, src, v.ConfigMap.LocalObjectReference.Name, v.ConfigMap.Items,
			v.ConfigMap.DefaultMode, v.ConfigMap.Optional)
		if err != nil {
			return "", err
		}
		return dir, writePayload(dir, payload)
	case v.Secret != nil:
		payload, err := secretPayload(ctx, src, v.Secret.SecretName, v.Secret.Items, v.Secret.DefaultMode, v.Secret.Optional)
		if err != nil {
			return "", err
		}
		return dir, writePayload(dir, payload)
	case v.DownwardAPI != nil:
		payload, err := downwardAPIPayload(src, v.DownwardAPI.Items, v.DownwardAPI.DefaultMode)
		if err != nil {
			return "", err
		}
		return dir, writePayload(dir, payload)
	default: // projected
		payload, err := projectedPayload(ctx, src, v.Projected)
		if err != nil {
			return "", err
		}
		return dir, writePayload(dir, payload)
	}
}

// setupHostPath checks or creates a hostPath volume's path per its type.
func setupHostPath(hp *corev1.HostPathVolumeSource) error {
	t := corev1.HostPathUnset
	if hp.Type != nil {
		t = *hp.Type
	}
	fi, statErr := os.Stat(hp.Path)
	checkMode := func(ok bool, what string) error {
		if statErr != nil {
			return fmt.Errorf("hostPath type check failed: %s is not a %s", hp.Path, what)
		}
		if !ok {
			return fmt.Errorf("hostPath type check failed: %s is not a %s", hp.Path, what)
		}
		return nil
	}
	switch t {
	case corev1.HostPathUnset:
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if statErr != nil {
			return os.MkdirAll(hp.Path, 0o755)
		}
		return checkMode(fi.IsDir(), "directory")
	case corev1.HostPathFileOrCreate:
		if statErr != nil {
			f, err := os.OpenFile(hp.Path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
		return checkMode(fi.Mode().IsRegular(), "file")
	case corev1.HostPathDirectory:
		return checkMode(statErr == nil && fi.IsDir(), "directory")
	case corev1.HostPathFile:
		return checkMode(statErr == nil && fi.Mode().IsRegular(), "file")
	case corev1.HostPathSocket:
		return checkMode(statErr == nil && fi.Mode()&fs.ModeSocket != 0, "socket")
	case corev1.HostPathCharDev:
		return checkMode(statErr == nil && fi.Mode()&fs.ModeCharDevice != 0, "character device")
	case corev1.HostPathBlockDev:
		return checkMode(statErr == nil && fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0, "block device")
	}
	return fmt.Errorf("hostPath type %q is not known", t)
}

// fileProjection is one file of a volume.
type fileProjection struct {
	Data []byte
	Mode os.FileMode
}

func modeOr(mode *int32, def *int32) os.FileMode {
	switch {
	case mode != nil:
		return os.FileMode(*mode)
	case def != nil:
		return os.FileMode(*def)
	}
	return defaultVolumeFileMode
}

// keyPayload projects data (by key) to files: every key, or the items.
func keyPayload(kind, ns, name string, data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32,
	optional *bool) (map[string]fileProjection, error) {
	out := map[string]fileProjection{}
	if len(items) == 0 {
		for k, v := range data {
			out[k] = fileProjection{Data: v, Mode: modeOr(nil, defaultMode)}
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if isTrue(optional) {
				continue
			}
			return nil, fmt.Errorf("configuration error: %s %s/%s has no key %q", kind, ns, name, it.Key)
		}
		out[it.Path] = fileProjection{Data: v, Mode: modeOr(it.Mode, defaultMode)}
	}
	return out, nil
}

func configMapPayload(ctx context.Context, src volumeSource, name string, items []corev1.KeyToPath, defaultMode *int32,
	optional *bool) (map[string]fileProjection, error) {
	cm, err := src.ConfigMap(ctx, name)
	if err != nil {
		if apierrors.IsNotFound(err) && isTrue(optional) {
			return map[string]fileProjection{}, nil
		}
		return nil, err
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyPayload("configmap", src.Pod.Namespace, name, data, items, defaultMode, optional)
}

func secretPayload(ctx context.Context, src volumeSource, name string, items []corev1.KeyToPath, defaultMode *int32,
	optional *bool) (map[string]fileProjection, error) {
	s, err := src.Secret(ctx, name)
	if err != nil {
		if apierrors.IsNotFound(err) && isTrue(optional) {
			return map[string]fileProjection{}, nil
		}
		return nil, err
	}
	return keyPayload("secret", src.Pod.Namespace, name, s.Data, items, defaultMode, optional)
}

func downwardAPIPayload(src volumeSource, items []corev1.DownwardAPIVolumeFile, defaultMode *int32) (map[string]fileProjection, error) {
	out := map[string]fileProjection{}
	for _, it := range items {
		var (
			v   string
			err error
		)
		switch {
		case it.FieldRef != nil:
			v, err = podFieldValue(it.FieldRef.FieldPath, src.Pod, src.PodIPs, src.HostIPs)
		case it.ResourceFieldRef != nil:
			v, err = containerResourceValue(it.ResourceFieldRef, src.Pod, nil, src.Allocatable)
		}
		if err != nil {
			return nil, err
		}
		out[it.Path] = fileProjection{Data: []byte(v), Mode: modeOr(it.Mode, defaultMode)}
	}
	return out, nil
}

func projectedPayload(ctx context.Context, src volumeSource, p *corev1.ProjectedVolumeSource) (map[string]fileProjection, error) {
	out := map[string]fileProjection{}
	merge := func(m map[string]fileProjection) {
		for k, v := range m {
			out[k] = v
		}
	}
	for _, s := range p.Sources {
		switch {
		case s.ConfigMap != nil:
			m, err := configMapPayload(ctx, src, s.ConfigMap.Name, s.ConfigMap.Items, p.DefaultMode, s.ConfigMap.Optional)
			if err != nil {
				return nil, err
			}
			merge(m)
		case s.Secret != nil:
			m, err := secretPayload(ctx, src, s.Secret.Name, s.Secret.Items, p.DefaultMode, s.Secret.Optional)
			if err != nil {
				return nil, err
			}
			merge(m)
		case s.DownwardAPI != nil:
			m, err := downwardAPIPayload(src, s.DownwardAPI.Items, p.DefaultMode)
			if err != nil {
				return nil, err
			}
			merge(m)
		case s.ServiceAccountToken != nil:
			t := s.ServiceAccountToken
			req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
				ExpirationSeconds: t.ExpirationSeconds,
				BoundObjectRef: &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod",
					Name: src.Pod.Name, UID: src.Pod.UID},
			}}
			if t.Audience != "" {
				req.Spec.Audiences = []string{t.Audience}
			}
			tok, err := src.Token(ctx, req)
			if err != nil {
				return nil, fmt.Errorf("failed to fetch token: %w", err)
			}
			out[t.Path] = fileProjection{Data: []byte(tok), Mode: modeOr(nil, p.DefaultMode)}
		case s.ClusterTrustBundle != nil:
			return nil, fmt.Errorf("%w: clusterTrustBundle projections are not", errUnsupportedVolume)
		case s.PodCertificate != nil:
			return nil, fmt.Errorf("%w: podCertificate projections are not", errUnsupportedVolume)
		}
	}
	return out, nil
}

// writePayload makes dir hold exactly payload: each file written to a temporary
// name and renamed (a reader sees the old or the new content), files no longer in
// payload removed.
func writePayload(dir string, payload map[string]fileProjection) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	want := map[string]bool{}
	paths := make([]string, 0, len(payload))
	for p := range payload {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		clean := filepath.Clean(p)
		if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("invalid path %q in volume", p)
		}
		want[clean] = true
		full := filepath.Join(dir, clean)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		f := payload[p]
		if cur, err := os.ReadFile(full); err == nil && string(cur) == string(f.Data) {
			if fi, err := os.Stat(full); err == nil && fi.Mode().Perm() == f.Mode.Perm() {
				continue
			}
		}
		tmp := full + ".kubesvc-tmp"
		if err := os.WriteFile(tmp, f.Data, f.Mode.Perm()); err != nil {
			return err
		}
		if err := os.Chmod(tmp, f.Mode.Perm()); err != nil { // WriteFile's mode is masked by umask
			return err
		}
		if err := os.Rename(tmp, full); err != nil {
			return err
		}
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if !want[rel] {
			return os.Remove(p)
		}
		return nil
	})
}

// containerMounts are the bind mounts of a container: its volumes at their
// mountPaths (with subPath or subPathExpr), and the pod's /etc/hosts,
// /etc/resolv.conf and /etc/hostname unless a volume is mounted there.
func containerMounts(c *corev1.Container, volumePaths map[string]string, podDir string, env []envVar, hostNetwork bool) ([]runtime.Mount, error) {
	var mounts []runtime.Mount
	taken := map[string]bool{}
	envMap := map[string]string{}
	for _, e := range env {
		envMap[e.Name] = e.Value
	}
	for _, vm := range c.VolumeMounts {
		host, ok := volumePaths[vm.Name]
		if !ok {
			return nil, fmt.Errorf("cannot find volume %q to mount into container %q", vm.Name, c.Name)
		}
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			sub = expand(vm.SubPathExpr, mappingFuncFor(envMap))
		}
		if sub != "" {
			clean := filepath.Clean(sub)
			if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
				return nil, fmt.Errorf("subPath %q of volume %q must be a relative path within the volume", sub, vm.Name)
			}
			host = filepath.Join(host, clean)
			if _, err := os.Stat(host); errors.Is(err, fs.ErrNotExist) {
				// as the kubelet: a missing subPath becomes a directory
				if err := os.MkdirAll(host, 0o750); err != nil {
					return nil, fmt.Errorf("creating subPath %s: %w", host, err)
				}
			}
		}
		mounts = append(mounts, runtime.Mount{HostPath: host, ContainerPath: vm.MountPath, ReadOnly: vm.ReadOnly})
		taken[filepath.Clean(vm.MountPath)] = true
	}
	for _, f := range []struct{ name, target string }{
		{etcHostsFile, "/etc/hosts"},
		{resolvConfFile, "/etc/resolv.conf"},
		{hostnameFile, "/etc/hostname"},
	} {
		if taken[f.target] || (hostNetwork && f.name == hostnameFile) {
			continue
		}
		mounts = append(mounts, runtime.Mount{HostPath: filepath.Join(podDir, f.name), ContainerPath: f.target})
	}
	return mounts, nil
}

// volumeMountStatuses are a container's status.volumeMounts, as the kubelet reports
// them.
func volumeMountStatuses(c *corev1.Container) []corev1.VolumeMountStatus {
	var out []corev1.VolumeMountStatus
	for _, vm := range c.VolumeMounts {
		s := corev1.VolumeMountStatus{Name: vm.Name, MountPath: vm.MountPath, ReadOnly: vm.ReadOnly}
		if vm.ReadOnly {
			mode := corev1.RecursiveReadOnlyDisabled
			s.RecursiveReadOnly = &mode
		}
		out = append(out, s)
	}
	return out
}

// tokenRequester requests service account tokens through the API.
func tokenRequester(a *Agent, pod *corev1.Pod) func(ctx context.Context, req *authenticationv1.TokenRequest) (string, error) {
	return func(ctx context.Context, req *authenticationv1.TokenRequest) (string, error) {
		sa := pod.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		tr, err := a.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
		if err != nil {
			return "", err
		}
		return tr.Status.Token, nil
	}
}
