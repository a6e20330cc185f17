package proxyconfig

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	v1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
)

// The ConfigMap kube-proxy's configuration lives in, as kubeadm makes it.
const (
	ConfigMapNamespace = metav1.NamespaceSystem
	ConfigMapName      = "kube-proxy"
	ConfigMapKey       = "config.conf"
)

// Loaded is one configuration, parsed, and where it came from.
type Loaded struct {
	Config Config
	// Versioned is the configuration as decoded, defaulted.
	Versioned *v1alpha1.KubeProxyConfiguration
	// Origin names the source ("ConfigMap kube-system/kube-proxy", "file
	// /etc/kube-proxy.yaml", "flags") for logs and the mirror pod.
	Origin string
	// Hash is a digest of the text it was parsed from (the mirror pod's
	// kubernetes.io/config.hash).
	Hash string
	// Warnings name what the configuration sets to no effect.
	Warnings []string
}

// Parse decodes data strictly, defaults it and completes it. Errors wrap
// ErrInvalid.
func Parse(data []byte) (Loaded, error) {
	v, err := Decode(data)
	if err != nil {
		return Loaded{}, err
	}
	SetDefaults(v)
	c, warns, err := Complete(v)
	if err != nil {
		return Loaded{}, err
	}
	sum := sha256.Sum256(data)
	return Loaded{Config: c, Versioned: v, Hash: hex.EncodeToString(sum[:8]), Warnings: warns}, nil
}

// Flags are the proxy's command-line settings, with kube-proxy's flag names.
type Flags struct {
	Mode               string        // --proxy-mode
	NodePortAddresses  []string      // --nodeport-addresses
	MasqueradeAll      bool          // --masquerade-all
	SyncPeriod         time.Duration // --sync-period
	MinSyncPeriod      time.Duration // --min-sync-period (0: each mode's default)
	HealthzBindAddress string        // --healthz-bind-address ("": none)
	MetricsBindAddress string        // --metrics-bind-address
	ClusterCIDRs       []string      // --cluster-cidr
}

// Versioned is the configuration the flags make: kubesvc's defaults, with the
// flags over them, as kube-proxy applies its flags (a flag given "" keeps ""
// where Validate accepts it: healthzBindAddress and metricsBindAddress, no
// server; a blank mode is the default mode). The mode's settings go to
// both mode sections, so that editing only the mode keeps them; a zero
// MinSyncPeriod keeps each section's default.
func (f Flags) Versioned() *v1alpha1.KubeProxyConfiguration {
	v := &v1alpha1.KubeProxyConfiguration{}
	v.APIVersion, v.Kind = GroupVersion.String(), Kind
	SetDefaults(v)
	v.Mode = v1alpha1.ProxyMode(f.Mode)
	if v.Mode == "" {
		v.Mode = v1alpha1.ProxyMode(DefaultMode)
	}
	v.NodePortAddresses = f.NodePortAddresses
	v.ClusterCIDR = strings.Join(f.ClusterCIDRs, ",")
	v.IPTables.MasqueradeAll, v.NFTables.MasqueradeAll = f.MasqueradeAll, f.MasqueradeAll
	v.IPTables.SyncPeriod.Duration, v.NFTables.SyncPeriod.Duration = f.SyncPeriod, f.SyncPeriod
	if f.MinSyncPeriod != 0 {
		v.IPTables.MinSyncPeriod.Duration, v.NFTables.MinSyncPeriod.Duration = f.MinSyncPeriod, f.MinSyncPeriod
	}
	v.HealthzBindAddress = f.HealthzBindAddress
	v.MetricsBindAddress = f.MetricsBindAddress
	return v
}

// Source is where the proxy's configuration comes from, in this order: the
// ConfigMap kube-system/kube-proxy (key config.conf) when it exists, else the
// --config file, else the flags. When the ConfigMap is missing, Load creates it
// from the file (its text as written) or the flags, so that there is one
// configuration, in the API, for `kubectl edit` — as in a kubeadm cluster,
// where kube-proxy's --config is that ConfigMap, mounted. Load never updates
// an existing ConfigMap.
type Source struct {
	// Client reads and creates the ConfigMap. Required.
	Client kubernetes.Interface
	// File is the --config file's name ("": none) and FileData its content,
	// read once at start.
	File     string
	FileData []byte
	// Flags is the configuration of the command-line flags (Flags.Versioned).
	// Required when File is "".
	Flags *v1alpha1.KubeProxyConfiguration
	// FlagsSet names the proxy flags given on the command line, for the warning
	// that a file or the ConfigMap overrides them.
	FlagsSet []string
	// Log receives which source is used and what it overrides (nil: discarded).
	Log *slog.Logger
}

// Seed is the configuration the ConfigMap is created from: the file's, else
// the flags'. Its text is what the ConfigMap's config.conf gets.
func (s Source) Seed() (Loaded, []byte, error) {
	if s.File != "" {
		l, err := Parse(s.FileData)
		if err != nil {
			return Loaded{}, nil, fmt.Errorf("--config %s: %w", s.File, err)
		}
		l.Origin = "file " + s.File
		return l, s.FileData, nil
	}
	if s.Flags == nil {
		return Loaded{}, nil, fmt.Errorf("%w: neither --config nor flags", ErrInvalid)
	}
	text, err := Encode(s.Flags)
	if err != nil {
		return Loaded{}, nil, err
	}
	// The flags' configuration as it is (not its text read back): a flag may
	// hold what the text cannot (--healthz-bind-address "", which reads back
	// as the default).
	v := s.Flags.DeepCopy()
	c, warns, err := Complete(v)
	if err != nil {
		return Loaded{}, nil, fmt.Errorf("the proxy flags: %w", err)
	}
	sum := sha256.Sum256(text)
	return Loaded{Config: c, Versioned: v, Origin: "flags", Hash: hex.EncodeToString(sum[:8]), Warnings: warns}, text, nil
}

// Load returns the configuration to run now. A ConfigMap that exists is used
// (its errors wrap ErrInvalid, with the source named); a missing one is created
// from Seed and Seed's configuration is returned (a ConfigMap created meanwhile
// by another node's proxy is read instead); one the proxy may not read (RBAC
// on a cluster that is not kubesvc's) is skipped for Seed. Errors that do not wrap ErrInvalid
// are the API server's: the caller may retry.
func (s Source) Load(ctx context.Context) (Loaded, error) {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cms := s.Client.CoreV1().ConfigMaps(ConfigMapNamespace)
	for range 2 {
		cm, err := cms.Get(ctx, ConfigMapName, metav1.GetOptions{})
		if err == nil {
			return s.fromConfigMap(cm, log)
		}
		if apierrors.IsForbidden(err) {
			// A cluster whose RBAC keeps the ConfigMap from this proxy: its own
			// configuration, as kube-proxy without the mount.
			log.Warn("the proxy may not read its ConfigMap: using --config or the flags", "configMap", ConfigMapNamespace+"/"+ConfigMapName, "err", err)
			seed, _, err := s.Seed()
			return seed, err
		}
		if !apierrors.IsNotFound(err) {
			return Loaded{}, fmt.Errorf("reading ConfigMap %s/%s: %w", ConfigMapNamespace, ConfigMapName, err)
		}
		seed, text, err := s.Seed()
		if err != nil {
			return Loaded{}, err
		}
		cm = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: ConfigMapNamespace, Labels: map[string]string{"app": "kube-proxy"}},
			Data:       map[string]string{ConfigMapKey: string(text)},
		}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		switch {
		case err == nil:
			log.Info("created ConfigMap with the proxy's configuration; edit it and delete this node's kube-proxy pod to apply",
				"configMap", ConfigMapNamespace+"/"+ConfigMapName, "from", seed.Origin)
			return seed, nil
		case apierrors.IsAlreadyExists(err):
			continue // another node's proxy was first: use its
		default:
			// The proxy runs with its own configuration; the next Load creates it.
			log.Warn("could not create the proxy's ConfigMap", "configMap", ConfigMapNamespace+"/"+ConfigMapName, "err", err)
			return seed, nil
		}
	}
	return Loaded{}, fmt.Errorf("ConfigMap %s/%s: created and deleted again while reading it", ConfigMapNamespace, ConfigMapName)
}

func (s Source) fromConfigMap(cm *corev1.ConfigMap, log *slog.Logger) (Loaded, error) {
	origin := "ConfigMap " + ConfigMapNamespace + "/" + ConfigMapName
	text, ok := cm.Data[ConfigMapKey]
	if !ok {
		return Loaded{}, fmt.Errorf("%s: %w: no key %q", origin, ErrInvalid, ConfigMapKey)
	}
	l, err := Parse([]byte(text))
	if err != nil {
		return Loaded{}, fmt.Errorf("%s: %w", origin, err)
	}
	l.Origin = origin
	if s.File != "" {
		log.Warn("--config is ignored: the ConfigMap takes precedence (delete the ConfigMap to have it created from --config)", "file", s.File, "configMap", ConfigMapNamespace+"/"+ConfigMapName)
	}
	if len(s.FlagsSet) > 0 {
		log.Warn("proxy flags are ignored: the ConfigMap takes precedence", "flags", s.FlagsSet, "configMap", ConfigMapNamespace+"/"+ConfigMapName)
	}
	return l, nil
}
