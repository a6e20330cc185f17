package validation

import (
	"encoding/json"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxSecretSize is core.MaxSecretSize (also used for ConfigMaps).
const maxSecretSize = 1 * 1024 * 1024

// ---------------------------------------------------------------------------
// Namespace

func validateNamespace(ns *corev1.Namespace) field.ErrorList {
	allErrs := validateObjectMeta(&ns.ObjectMeta, false, nameIsDNSLabel, true)
	for i := range ns.Spec.Finalizers {
		allErrs = append(allErrs, validateFinalizerName(string(ns.Spec.Finalizers[i]), field.NewPath("spec", "finalizers"))...)
	}
	return allErrs
}

func validateNamespaceUpdate(ns, old *corev1.Namespace) field.ErrorList {
	return validateObjectMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta, true)
}

func validateNamespaceStatusUpdate(ns, old *corev1.Namespace) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta, true)
	if ns.DeletionTimestamp.IsZero() {
		if ns.Status.Phase != corev1.NamespaceActive {
			allErrs = append(allErrs, field.Invalid(field.NewPath("status", "Phase"), ns.Status.Phase, "may only be 'Active' if `deletionTimestamp` is empty"))
		}
	} else if ns.Status.Phase != corev1.NamespaceTerminating {
		allErrs = append(allErrs, field.Invalid(field.NewPath("status", "Phase"), ns.Status.Phase, "may only be 'Terminating' if `deletionTimestamp` is not empty"))
	}
	return allErrs
}

// ValidateNamespaceFinalizeUpdate validates an update through the
// namespaces/{name}/finalize subresource.
func ValidateNamespaceFinalizeUpdate(ns, old *corev1.Namespace) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta, true)
	p := field.NewPath("spec", "finalizers")
	for i := range ns.Spec.Finalizers {
		allErrs = append(allErrs, validateFinalizerName(string(ns.Spec.Finalizers[i]), p.Index(i))...)
	}
	return allErrs
}

// ---------------------------------------------------------------------------
// Node

const (
	taintsAnnotationKey          = "scheduler.alpha.kubernetes.io/taints"
	preferAvoidPodsAnnotationKey = "scheduler.alpha.kubernetes.io/preferAvoidPods"
)

func validateNodeSpecificAnnotations(annotations map[string]string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if v := annotations[taintsAnnotationKey]; v != "" {
		var taints []corev1.Taint
		if err := json.Unmarshal([]byte(v), &taints); err != nil {
			allErrs = append(allErrs, field.Invalid(fldPath, taintsAnnotationKey, err.Error()))
		} else if len(taints) > 0 {
			allErrs = append(allErrs, validateNodeTaints(taints, fldPath.Child(taintsAnnotationKey))...)
		}
	}
	if v := annotations[preferAvoidPodsAnnotationKey]; v != "" {
		var avoid corev1.AvoidPods
		if err := json.Unmarshal([]byte(v), &avoid); err != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child(preferAvoidPodsAnnotationKey), preferAvoidPodsAnnotationKey, err.Error()))
		}
	}
	return allErrs
}

func validateNodeTaints(taints []corev1.Taint, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	unique := map[corev1.TaintEffect]map[string]bool{}
	for i, t := range taints {
		idxPath := fldPath.Index(i)
		allErrs = append(allErrs, metav1validation.ValidateLabelName(t.Key, idxPath.Child("key"))...)
		if errs := validation.IsValidLabelValue(t.Value); len(errs) != 0 {
			allErrs = append(allErrs, field.Invalid(idxPath.Child("value"), t.Value, strings.Join(errs, ";")))
		}
		allErrs = append(allErrs, validateTaintEffect(t.Effect, false, idxPath.Child("effect"))...)
		if unique[t.Effect][t.Key] {
			e := field.Duplicate(idxPath, internalTaint(t))
			e.Detail = "taints must be unique by key and effect pair"
			allErrs = append(allErrs, e)
			continue
		}
		if unique[t.Effect] == nil {
			unique[t.Effect] = map[string]bool{}
		}
		unique[t.Effect][t.Key] = true
	}
	return allErrs
}

// internalTaintT has the shape of the internal core.Taint.
type internalTaintT struct {
	Key       string
	Value     string
	Effect    corev1.TaintEffect
	TimeAdded interface{}
}

func internalTaint(t corev1.Taint) internalTaintT {
	it := internalTaintT{Key: t.Key, Value: t.Value, Effect: t.Effect}
	if t.TimeAdded != nil {
		it.TimeAdded = t.TimeAdded
	}
	return it
}

func validateNode(node *corev1.Node, opts Options) field.ErrorList {
	fldPath := metadataPath
	allErrs := validateObjectMeta(&node.ObjectMeta, false, nameIsDNSSubdomain, true)
	allErrs = append(allErrs, validateNodeSpecificAnnotations(node.Annotations, fldPath.Child("annotations"))...)
	if len(node.Spec.Taints) > 0 {
		// (sic) kube-apiserver reports spec taints under metadata.taints
		allErrs = append(allErrs, validateNodeTaints(node.Spec.Taints, fldPath.Child("taints"))...)
	}
	allErrs = append(allErrs, validateNodeResources(node)...)
	if len(node.Spec.PodCIDRs) > 0 {
		p := field.NewPath("spec", "podCIDRs")
		for idx, value := range node.Spec.PodCIDRs {
			allErrs = append(allErrs, opts.legacyCIDR(p.Index(idx), value, nil)...)
		}
		if len(node.Spec.PodCIDRs) > 1 {
			var ips []string
			for _, c := range node.Spec.PodCIDRs {
				ips = append(ips, strings.SplitN(c, "/", 2)[0])
			}
			if !isDualStack(ips) || len(node.Spec.PodCIDRs) > 2 {
				allErrs = append(allErrs, field.Invalid(p, node.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
			}
			seen := map[string]bool{}
			for i, v := range node.Spec.PodCIDRs {
				if seen[v] {
					allErrs = append(allErrs, field.Duplicate(p.Index(i), v))
				}
				seen[v] = true
			}
		}
	}
	return allErrs
}

func validateNodeResources(node *corev1.Node) field.ErrorList {
	var allErrs field.ErrorList
	for k, v := range node.Status.Capacity {
		allErrs = append(allErrs, validateNodeResourceQuantity(k, v, field.NewPath("status", "capacity", string(k)))...)
	}
	for k, v := range node.Status.Allocatable {
		allErrs = append(allErrs, validateNodeResourceQuantity(k, v, field.NewPath("status", "allocatable", string(k)))...)
	}
	return allErrs
}

func validateNodeResourceQuantity(name corev1.ResourceName, v resource.Quantity, p *field.Path) field.ErrorList {
	return validateResourceQuantityValue(name, v, p)
}

func validateNodeUpdate(node, old *corev1.Node) field.ErrorList {
	fldPath := metadataPath
	allErrs := validateObjectMetaUpdate(&node.ObjectMeta, &old.ObjectMeta, true)
	allErrs = append(allErrs, validateNodeSpecificAnnotations(node.Annotations, fldPath.Child("annotations"))...)
	allErrs = append(allErrs, validateNodeResources(node)...)

	addresses := map[corev1.NodeAddress]bool{}
	for i, a := range node.Status.Addresses {
		if addresses[a] {
			allErrs = append(allErrs, field.Duplicate(field.NewPath("status", "addresses").Index(i), internalNodeAddress{Type: a.Type, Address: a.Address}))
		}
		addresses[a] = true
	}
	const podCIDRMsg = "node updates may not change podCIDR except from \"\" to valid"
	if len(old.Spec.PodCIDRs) > 0 {
		if len(old.Spec.PodCIDRs) != len(node.Spec.PodCIDRs) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "podCIDRs"), podCIDRMsg))
		} else {
			for idx, value := range old.Spec.PodCIDRs {
				if value != node.Spec.PodCIDRs[idx] {
					allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "podCIDRs"), podCIDRMsg))
				}
			}
		}
	}
	if len(old.Spec.ProviderID) > 0 && old.Spec.ProviderID != node.Spec.ProviderID {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	if len(node.Spec.Taints) > 0 {
		allErrs = append(allErrs, validateNodeTaints(node.Spec.Taints, fldPath.Child("taints"))...)
	}
	if node.Spec.DoNotUseExternalID != old.Spec.DoNotUseExternalID {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "externalID"), "may not be updated"))
	}
	return allErrs
}

type internalNodeAddress struct {
	Type    corev1.NodeAddressType
	Address string
}

// ---------------------------------------------------------------------------
// ServiceAccount

func validateServiceAccount(sa *corev1.ServiceAccount) field.ErrorList {
	return validateObjectMeta(&sa.ObjectMeta, true, nameIsDNSSubdomain, true)
}

func validateServiceAccountUpdate(sa, old *corev1.ServiceAccount) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&sa.ObjectMeta, &old.ObjectMeta, true)
	return append(allErrs, validateServiceAccount(sa)...)
}

// ---------------------------------------------------------------------------
// Secret

func validateSecret(secret *corev1.Secret) field.ErrorList {
	allErrs := validateObjectMeta(&secret.ObjectMeta, true, nameIsDNSSubdomain, true)
	dataPath := field.NewPath("data")
	totalSize := 0
	for key, value := range secret.Data {
		for _, msg := range validation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(dataPath.Key(key), key, msg))
		}
		totalSize += len(value)
	}
	if totalSize > maxSecretSize {
		allErrs = append(allErrs, field.TooLong(dataPath, "", maxSecretSize))
	}
	switch secret.Type {
	case corev1.SecretTypeServiceAccountToken:
		if v := secret.Annotations[corev1.ServiceAccountNameKey]; len(v) == 0 {
			allErrs = append(allErrs, field.Required(metadataPath.Child("annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeOpaque, "":
	case corev1.SecretTypeDockercfg:
		b, ok := secret.Data[corev1.DockerConfigKey]
		if !ok {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.DockerConfigKey), ""))
			break
		}
		if err := json.Unmarshal(b, &map[string]interface{}{}); err != nil {
			allErrs = append(allErrs, field.Invalid(dataPath.Key(corev1.DockerConfigKey), "<secret contents redacted>", err.Error()))
		}
	case corev1.SecretTypeDockerConfigJson:
		b, ok := secret.Data[corev1.DockerConfigJsonKey]
		if !ok {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.DockerConfigJsonKey), ""))
			break
		}
		if err := json.Unmarshal(b, &map[string]interface{}{}); err != nil {
			allErrs = append(allErrs, field.Invalid(dataPath.Key(corev1.DockerConfigJsonKey), "<secret contents redacted>", err.Error()))
		}
	case corev1.SecretTypeBasicAuth:
		_, u := secret.Data[corev1.BasicAuthUsernameKey]
		_, p := secret.Data[corev1.BasicAuthPasswordKey]
		if !u && !p {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.BasicAuthUsernameKey), ""))
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeSSHAuth:
		if len(secret.Data[corev1.SSHAuthPrivateKey]) == 0 {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.SSHAuthPrivateKey), ""))
		}
	case corev1.SecretTypeTLS:
		if _, ok := secret.Data[corev1.TLSCertKey]; !ok {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.TLSCertKey), ""))
		}
		if _, ok := secret.Data[corev1.TLSPrivateKeyKey]; !ok {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.TLSPrivateKeyKey), ""))
		}
	}
	return allErrs
}

func validateSecretUpdate(secret, old *corev1.Secret) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&secret.ObjectMeta, &old.ObjectMeta, true)
	allErrs = append(allErrs, validateImmutableField(secret.Type, old.Type, field.NewPath("type"))...)
	if old.Immutable != nil && *old.Immutable {
		if secret.Immutable == nil || !*secret.Immutable {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
		}
		if !reflect.DeepEqual(secret.Data, old.Data) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
		}
	}
	return append(allErrs, validateSecret(secret)...)
}

// ---------------------------------------------------------------------------
// ConfigMap

func validateConfigMap(cfg *corev1.ConfigMap) field.ErrorList {
	allErrs := validateObjectMeta(&cfg.ObjectMeta, true, nameIsDNSSubdomain, true)
	totalSize := 0
	for key, value := range cfg.Data {
		for _, msg := range validation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("data").Key(key), key, msg))
		}
		if _, isValue := cfg.BinaryData[key]; isValue {
			allErrs = append(allErrs, field.Invalid(field.NewPath("data").Key(key), key, "duplicate of key present in binaryData"))
		}
		totalSize += len(value)
	}
	for key, value := range cfg.BinaryData {
		for _, msg := range validation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("binaryData").Key(key), key, msg))
		}
		totalSize += len(value)
	}
	if totalSize > maxSecretSize {
		// "" refers to the whole object
		allErrs = append(allErrs, field.TooLong(field.NewPath(""), "", maxSecretSize))
	}
	return allErrs
}

func validateConfigMapUpdate(cfg, old *corev1.ConfigMap) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&cfg.ObjectMeta, &old.ObjectMeta, true)
	if old.Immutable != nil && *old.Immutable {
		if cfg.Immutable == nil || !*cfg.Immutable {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
		}
		if !reflect.DeepEqual(cfg.Data, old.Data) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
		}
		if !reflect.DeepEqual(cfg.BinaryData, old.BinaryData) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("binaryData"), "field is immutable when `immutable` is set"))
		}
	}
	return append(allErrs, validateConfigMap(cfg)...)
}

// ---------------------------------------------------------------------------
// Endpoints

func validateEndpoints(ep *corev1.Endpoints, opts Options) field.ErrorList {
	return validateEndpointsWithOld(ep, nil, opts)
}

func validateEndpointsWithOld(ep, old *corev1.Endpoints, opts Options) field.ErrorList {
	allErrs := validateObjectMeta(&ep.ObjectMeta, true, nameIsDNSSubdomain, true)
	var oldIPs []string
	if old != nil {
		for _, ss := range old.Subsets {
			for _, a := range ss.Addresses {
				oldIPs = append(oldIPs, a.IP)
			}
			for _, a := range ss.NotReadyAddresses {
				oldIPs = append(oldIPs, a.IP)
			}
		}
	}
	fldPath := field.NewPath("subsets")
	for i := range ep.Subsets {
		ss := &ep.Subsets[i]
		idxPath := fldPath.Index(i)
		// headless services may have subsets without ports, but not without addresses
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			allErrs = append(allErrs, field.Required(idxPath, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j := range ss.Addresses {
			allErrs = append(allErrs, validateEndpointAddress(&ss.Addresses[j], idxPath.Child("addresses").Index(j), oldIPs, opts)...)
		}
		for j := range ss.NotReadyAddresses {
			allErrs = append(allErrs, validateEndpointAddress(&ss.NotReadyAddresses[j], idxPath.Child("notReadyAddresses").Index(j), oldIPs, opts)...)
		}
		for j := range ss.Ports {
			allErrs = append(allErrs, validateEndpointPort(&ss.Ports[j], len(ss.Ports) > 1, idxPath.Child("ports").Index(j))...)
		}
	}
	return allErrs
}

func validateEndpointsUpdate(ep, old *corev1.Endpoints, opts Options) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ep.ObjectMeta, &old.ObjectMeta, true)
	return append(allErrs, validateEndpointsWithOld(ep, old, opts)...)
}

func validateEndpointAddress(address *corev1.EndpointAddress, fldPath *field.Path, oldIPs []string, opts Options) field.ErrorList {
	ipErrs := opts.legacyIP(fldPath.Child("ip"), address.IP, oldIPs)
	allErrs := append(field.ErrorList{}, ipErrs...)
	if len(address.Hostname) > 0 {
		allErrs = append(allErrs, validateDNS1123Label(address.Hostname, fldPath.Child("hostname"))...)
	}
	if address.NodeName != nil {
		allErrs = append(allErrs, validateNameWith(nameIsDNSSubdomain, *address.NodeName, fldPath.Child("nodeName"))...)
	}
	allErrs = append(allErrs, validateNonSpecialIP(address.IP, fldPath.Child("ip"))...)
	return allErrs
}

func validateEndpointPort(port *corev1.EndpointPort, requireName bool, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if requireName && len(port.Name) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	} else if len(port.Name) != 0 {
		allErrs = append(allErrs, validateDNS1123Label(port.Name, fldPath.Child("name"))...)
	}
	for _, msg := range validation.IsValidPortNum(int(port.Port)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("port"), port.Port, msg))
	}
	if len(port.Protocol) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("protocol"), ""))
	} else if !contains(supportedPortProtocols, string(port.Protocol)) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("protocol"), port.Protocol, supportedPortProtocols))
	}
	if port.AppProtocol != nil {
		allErrs = append(allErrs, validateQualifiedName(*port.AppProtocol, fldPath.Child("appProtocol"))...)
	}
	return allErrs
}
