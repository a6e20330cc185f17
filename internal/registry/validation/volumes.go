package validation

import (
	"fmt"
	"path"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validateVolumes(volumes []corev1.Volume, podMeta *metav1.ObjectMeta, fldPath *field.Path, opts podOpts) (map[string]corev1.VolumeSource, field.ErrorList) {
	var allErrs field.ErrorList
	allNames := map[string]bool{}
	createdPVCs := map[string]bool{}
	if podMeta != nil && podMeta.Name != "" {
		for _, vol := range volumes {
			if vol.Ephemeral != nil {
				createdPVCs[podMeta.Name+"-"+vol.Name] = true
			}
		}
	}
	vols := map[string]corev1.VolumeSource{}
	for i, vol := range volumes {
		idxPath := fldPath.Index(i)
		namePath := idxPath.Child("name")
		el := validateVolumeSource(&vol.VolumeSource, idxPath, vol.Name, podMeta, opts)
		if len(vol.Name) == 0 {
			el = append(el, field.Required(namePath, ""))
		} else {
			el = append(el, validateDNS1123Label(vol.Name, namePath)...)
		}
		if allNames[vol.Name] {
			el = append(el, field.Duplicate(namePath, vol.Name))
		}
		if len(el) == 0 {
			allNames[vol.Name] = true
			vols[vol.Name] = vol.VolumeSource
		} else {
			allErrs = append(allErrs, el...)
		}
		if vol.PersistentVolumeClaim != nil && createdPVCs[vol.PersistentVolumeClaim.ClaimName] {
			allErrs = append(allErrs, field.Invalid(idxPath.Child("persistentVolumeClaim").Child("claimName"), vol.PersistentVolumeClaim.ClaimName,
				"must not reference a PVC that gets created for an ephemeral volume"))
		}
	}
	return vols, allErrs
}

// volumeSourceNames lists the (json) names of the set volume sources in the
// order kube-apiserver checks them.
func volumeSourceNames(s *corev1.VolumeSource) []string {
	var names []string
	add := func(set bool, name string) {
		if set {
			names = append(names, name)
		}
	}
	add(s.EmptyDir != nil, "emptyDir")
	add(s.HostPath != nil, "hostPath")
	add(s.GitRepo != nil, "gitRepo")
	add(s.GCEPersistentDisk != nil, "gcePersistentDisk")
	add(s.AWSElasticBlockStore != nil, "awsElasticBlockStore")
	add(s.Secret != nil, "secret")
	add(s.NFS != nil, "nfs")
	add(s.ISCSI != nil, "iscsi")
	add(s.Glusterfs != nil, "glusterfs")
	add(s.Flocker != nil, "flocker")
	add(s.PersistentVolumeClaim != nil, "persistentVolumeClaim")
	add(s.RBD != nil, "rbd")
	add(s.Cinder != nil, "cinder")
	add(s.CephFS != nil, "cephFS")
	add(s.Quobyte != nil, "quobyte")
	add(s.DownwardAPI != nil, "downwarAPI") // (sic)
	add(s.FC != nil, "fc")
	add(s.FlexVolume != nil, "flexVolume")
	add(s.ConfigMap != nil, "configMap")
	add(s.AzureFile != nil, "azureFile")
	add(s.VsphereVolume != nil, "vsphereVolume")
	add(s.PhotonPersistentDisk != nil, "photonPersistentDisk")
	add(s.PortworxVolume != nil, "portworxVolume")
	add(s.AzureDisk != nil, "azureDisk")
	add(s.StorageOS != nil, "storageos")
	add(s.Projected != nil, "projected")
	add(s.ScaleIO != nil, "scaleIO")
	add(s.CSI != nil, "csi")
	add(s.Ephemeral != nil, "ephemeral")
	add(s.Image != nil, "image")
	return names
}

func validateVolumeSource(source *corev1.VolumeSource, fldPath *field.Path, volName string, podMeta *metav1.ObjectMeta, opts podOpts) field.ErrorList {
	var allErrs field.ErrorList
	names := volumeSourceNames(source)
	if len(names) == 0 {
		return append(allErrs, field.Required(fldPath, "must specify a volume type"))
	}
	for _, n := range names[1:] {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child(n), "may not specify more than 1 volume type"))
	}
	// only the first source set is validated further
	switch names[0] {
	case "emptyDir":
		if source.EmptyDir.SizeLimit != nil && source.EmptyDir.SizeLimit.Sign() < 0 {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("emptyDir").Child("sizeLimit"), "SizeLimit field must be a valid resource quantity"))
		}
	case "hostPath":
		p := fldPath.Child("hostPath")
		if len(source.HostPath.Path) == 0 {
			allErrs = append(allErrs, field.Required(p.Child("path"), ""))
			break
		}
		allErrs = append(allErrs, validatePathNoBacksteps(source.HostPath.Path, p.Child("path"))...)
		if t := source.HostPath.Type; t != nil {
			switch *t {
			case corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory, corev1.HostPathFileOrCreate,
				corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev:
			default:
				allErrs = append(allErrs, field.NotSupported(p.Child("type"), t, []string{"", "BlockDevice", "CharDevice", "Directory",
					"DirectoryOrCreate", "File", "FileOrCreate", "Socket"}))
			}
		}
	case "gitRepo":
		p := fldPath.Child("gitRepo")
		if len(source.GitRepo.Repository) == 0 {
			allErrs = append(allErrs, field.Required(p.Child("repository"), ""))
		}
		allErrs = append(allErrs, validateLocalDescendingPath(source.GitRepo.Directory, p.Child("directory"))...)
	case "secret":
		p := fldPath.Child("secret")
		if len(source.Secret.SecretName) == 0 {
			allErrs = append(allErrs, field.Required(p.Child("secretName"), ""))
		}
		allErrs = append(allErrs, validateFileMode(source.Secret.DefaultMode, p.Child("defaultMode"))...)
		for i := range source.Secret.Items {
			allErrs = append(allErrs, validateKeyToPath(&source.Secret.Items[i], p.Child("items").Index(i))...)
		}
	case "nfs":
		p := fldPath.Child("nfs")
		if len(source.NFS.Server) == 0 {
			allErrs = append(allErrs, field.Required(p.Child("server"), ""))
		}
		if len(source.NFS.Path) == 0 {
			allErrs = append(allErrs, field.Required(p.Child("path"), ""))
		}
		if !path.IsAbs(source.NFS.Path) {
			allErrs = append(allErrs, field.Invalid(p.Child("path"), source.NFS.Path, "must be an absolute path"))
		}
	case "persistentVolumeClaim":
		if len(source.PersistentVolumeClaim.ClaimName) == 0 {
			allErrs = append(allErrs, field.Required(fldPath.Child("persistentVolumeClaim").Child("claimName"), ""))
		}
	case "downwarAPI":
		p := fldPath.Child("downwardAPI")
		allErrs = append(allErrs, validateFileMode(source.DownwardAPI.DefaultMode, p.Child("defaultMode"))...)
		for i := range source.DownwardAPI.Items {
			allErrs = append(allErrs, validateDownwardAPIVolumeFile(&source.DownwardAPI.Items[i], p)...)
		}
	case "configMap":
		p := fldPath.Child("configMap")
		if len(source.ConfigMap.Name) == 0 {
			allErrs = append(allErrs, field.Required(p.Child("name"), ""))
		}
		allErrs = append(allErrs, validateFileMode(source.ConfigMap.DefaultMode, p.Child("defaultMode"))...)
		for i := range source.ConfigMap.Items {
			allErrs = append(allErrs, validateKeyToPath(&source.ConfigMap.Items[i], p.Child("items").Index(i))...)
		}
	case "projected":
		p := fldPath.Child("projected")
		allErrs = append(allErrs, validateFileMode(source.Projected.DefaultMode, p.Child("defaultMode"))...)
		allErrs = append(allErrs, validateProjectionSources(source.Projected, p)...)
	case "csi":
		p := fldPath.Child("csi")
		if len(source.CSI.Driver) == 0 {
			allErrs = append(allErrs, field.Required(p.Child("driver"), ""))
		}
	case "ephemeral":
		p := fldPath.Child("ephemeral")
		if source.Ephemeral.VolumeClaimTemplate == nil {
			allErrs = append(allErrs, field.Required(p.Child("volumeClaimTemplate"), ""))
		} else if podMeta != nil && podMeta.Name != "" && volName != "" {
			pvcName := podMeta.Name + "-" + volName
			for _, msg := range nameIsDNSSubdomain(pvcName, false) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("name"), volName, fmt.Sprintf("PVC name %q: %v", pvcName, msg)))
			}
		}
	case "image":
		p := fldPath.Child("image")
		if opts.resourceIsPod && len(source.Image.Reference) == 0 {
			allErrs = append(allErrs, field.Required(p.Child("reference"), ""))
		}
		allErrs = append(allErrs, validatePullPolicy(source.Image.PullPolicy, p.Child("pullPolicy"))...)
	}
	return allErrs
}

func validateFileMode(mode *int32, fldPath *field.Path) field.ErrorList {
	if mode != nil && (*mode > 0777 || *mode < 0) {
		return field.ErrorList{field.Invalid(fldPath, *mode, fileModeErrorMsg)}
	}
	return nil
}

func validateKeyToPath(kp *corev1.KeyToPath, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(kp.Key) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("key"), ""))
	}
	if len(kp.Path) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("path"), ""))
	}
	allErrs = append(allErrs, validateLocalNonReservedPath(kp.Path, fldPath.Child("path"))...)
	return append(allErrs, validateFileMode(kp.Mode, fldPath.Child("mode"))...)
}

func validateDownwardAPIVolumeFile(file *corev1.DownwardAPIVolumeFile, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(file.Path) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("path"), ""))
	}
	allErrs = append(allErrs, validateLocalNonReservedPath(file.Path, fldPath.Child("path"))...)
	if file.FieldRef != nil {
		allErrs = append(allErrs, validateObjectFieldSelector(file.FieldRef, validVolumeDownwardAPIFieldPathExpressions, fldPath.Child("fieldRef"))...)
		if file.ResourceFieldRef != nil {
			allErrs = append(allErrs, field.Invalid(fldPath, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
		}
	} else if file.ResourceFieldRef != nil {
		allErrs = append(allErrs, validateContainerResourceFieldSelector(file.ResourceFieldRef, fldPath.Child("resourceFieldRef"), true)...)
	} else {
		allErrs = append(allErrs, field.Required(fldPath, "one of fieldRef and resourceFieldRef is required"))
	}
	return append(allErrs, validateFileMode(file.Mode, fldPath.Child("mode"))...)
}

func validateProjectionSources(projection *corev1.ProjectedVolumeSource, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allPaths := map[string]bool{}
	for i, source := range projection.Sources {
		numSources := 0
		srcPath := fldPath.Child("sources").Index(i)
		if source.Secret != nil {
			numSources++
			pp := srcPath.Child("secret")
			if len(source.Secret.Name) == 0 {
				allErrs = append(allErrs, field.Required(pp.Child("name"), ""))
			}
			for j := range source.Secret.Items {
				kp := &source.Secret.Items[j]
				allErrs = append(allErrs, validateKeyToPath(kp, pp.Child("items").Index(j))...)
				if len(kp.Path) > 0 {
					if allPaths[kp.Path] {
						allErrs = append(allErrs, field.Invalid(fldPath, source.Secret.Name, "conflicting duplicate paths"))
					}
					allPaths[kp.Path] = true
				}
			}
		}
		if source.ConfigMap != nil {
			numSources++
			pp := srcPath.Child("configMap")
			if len(source.ConfigMap.Name) == 0 {
				allErrs = append(allErrs, field.Required(pp.Child("name"), ""))
			}
			for j := range source.ConfigMap.Items {
				kp := &source.ConfigMap.Items[j]
				allErrs = append(allErrs, validateKeyToPath(kp, pp.Child("items").Index(j))...)
				if len(kp.Path) > 0 {
					if allPaths[kp.Path] {
						allErrs = append(allErrs, field.Invalid(fldPath, source.ConfigMap.Name, "conflicting duplicate paths"))
					}
					allPaths[kp.Path] = true
				}
			}
		}
		if source.DownwardAPI != nil {
			numSources++
			pp := srcPath.Child("downwardAPI")
			for j := range source.DownwardAPI.Items {
				file := &source.DownwardAPI.Items[j]
				allErrs = append(allErrs, validateDownwardAPIVolumeFile(file, pp)...)
				if len(file.Path) > 0 {
					if allPaths[file.Path] {
						allErrs = append(allErrs, field.Invalid(fldPath, file.Path, "conflicting duplicate paths"))
					}
					allPaths[file.Path] = true
				}
			}
		}
		if sat := source.ServiceAccountToken; sat != nil {
			numSources++
			pp := srcPath.Child("serviceAccountToken")
			exp := int64(3600)
			if sat.ExpirationSeconds != nil {
				exp = *sat.ExpirationSeconds
			}
			if exp < 10*60 {
				allErrs = append(allErrs, field.Invalid(pp.Child("expirationSeconds"), exp, "may not specify a duration less than 10 minutes"))
			}
			if exp > 1<<32 {
				allErrs = append(allErrs, field.Invalid(pp.Child("expirationSeconds"), exp, "may not specify a duration larger than 2^32 seconds"))
			}
			if sat.Path == "" {
				allErrs = append(allErrs, field.Required(fldPath.Child("path"), ""))
			} else {
				allErrs = append(allErrs, validateLocalNonReservedPath(sat.Path, fldPath.Child("path"))...)
			}
		}
		if ctb := source.ClusterTrustBundle; ctb != nil {
			numSources++
			pp := srcPath.Child("clusterTrustBundle")
			if ctb.Name != nil && ctb.SignerName != nil {
				allErrs = append(allErrs, field.Invalid(pp, ctb, "only one of name and signerName may be used"))
			} else if ctb.Name == nil && ctb.SignerName == nil {
				allErrs = append(allErrs, field.Required(pp, "either name or signerName must be specified"))
			}
			if ctb.Path == "" {
				allErrs = append(allErrs, field.Required(pp.Child("path"), ""))
			}
			allErrs = append(allErrs, validateLocalNonReservedPath(ctb.Path, pp.Child("path"))...)
			if allPaths[ctb.Path] {
				allErrs = append(allErrs, field.Invalid(fldPath, ctb.Path, "conflicting duplicate paths"))
			}
			allPaths[ctb.Path] = true
		}
		if numSources > 1 {
			allErrs = append(allErrs, field.Forbidden(srcPath, "may not specify more than 1 volume type per source"))
		}
	}
	return allErrs
}

func validateVolumeMounts(mounts []corev1.VolumeMount, volDevices map[string]string, volumes map[string]corev1.VolumeSource, container *corev1.Container, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	mountpoints := map[string]bool{}
	for i, mnt := range mounts {
		idxPath := fldPath.Index(i)
		if len(mnt.Name) == 0 {
			allErrs = append(allErrs, field.Required(idxPath.Child("name"), ""))
		}
		if _, ok := volumes[mnt.Name]; !ok {
			allErrs = append(allErrs, field.NotFound(idxPath.Child("name"), mnt.Name))
		}
		if len(mnt.MountPath) == 0 {
			allErrs = append(allErrs, field.Required(idxPath.Child("mountPath"), ""))
		}
		if mountpoints[mnt.MountPath] {
			allErrs = append(allErrs, field.Invalid(idxPath.Child("mountPath"), mnt.MountPath, "must be unique"))
		}
		mountpoints[mnt.MountPath] = true
		if _, ok := volDevices[mnt.Name]; ok {
			allErrs = append(allErrs, field.Invalid(idxPath.Child("name"), mnt.Name, "must not already exist in volumeDevices"))
		}
		for _, devPath := range volDevices {
			if devPath == mnt.MountPath {
				allErrs = append(allErrs, field.Invalid(idxPath.Child("mountPath"), mnt.MountPath, "must not already exist as a path in volumeDevices"))
				break
			}
		}
		if v, ok := volumes[mnt.Name]; ok && v.Image != nil {
			if len(mnt.SubPath) != 0 {
				allErrs = append(allErrs, field.Invalid(idxPath.Child("subPath"), mnt.SubPath, "not allowed in image volume sources"))
			}
			if len(mnt.SubPathExpr) != 0 {
				allErrs = append(allErrs, field.Invalid(idxPath.Child("subPathExpr"), mnt.SubPathExpr, "not allowed in image volume sources"))
			}
		}
		// (sic) the subPath checks use the list path, not the item path
		if len(mnt.SubPath) > 0 {
			allErrs = append(allErrs, validateLocalDescendingPath(mnt.SubPath, fldPath.Child("subPath"))...)
		}
		if len(mnt.SubPathExpr) > 0 {
			if len(mnt.SubPath) > 0 {
				allErrs = append(allErrs, field.Invalid(idxPath.Child("subPathExpr"), mnt.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
			}
			allErrs = append(allErrs, validateLocalDescendingPath(mnt.SubPathExpr, fldPath.Child("subPathExpr"))...)
		}
		if mnt.MountPropagation != nil {
			mp := *mnt.MountPropagation
			switch mp {
			case corev1.MountPropagationBidirectional, corev1.MountPropagationHostToContainer, corev1.MountPropagationNone:
			default:
				allErrs = append(allErrs, field.NotSupported(fldPath.Child("mountPropagation"), mp, []string{"Bidirectional", "HostToContainer", "None"}))
			}
			privileged := container.SecurityContext != nil && container.SecurityContext.Privileged != nil && *container.SecurityContext.Privileged
			if mp == corev1.MountPropagationBidirectional && !privileged {
				allErrs = append(allErrs, field.Forbidden(fldPath.Child("mountPropagation"), "Bidirectional mount propagation is available only to privileged containers"))
			}
		}
		if rro := mnt.RecursiveReadOnly; rro != nil {
			p := fldPath.Child("recursiveReadOnly")
			switch *rro {
			case corev1.RecursiveReadOnlyDisabled:
			case corev1.RecursiveReadOnlyEnabled, corev1.RecursiveReadOnlyIfPossible:
				if !mnt.ReadOnly {
					allErrs = append(allErrs, field.Forbidden(p, "may only be specified when readOnly is true"))
				}
				if mnt.MountPropagation != nil && *mnt.MountPropagation != corev1.MountPropagationNone {
					allErrs = append(allErrs, field.Forbidden(p, "may only be specified when mountPropagation is None or not specified"))
				}
			default:
				allErrs = append(allErrs, field.NotSupported(p, *rro, []string{"Disabled", "Enabled", "IfPossible"}))
			}
		}
	}
	return allErrs
}

func validateVolumeDevices(devices []corev1.VolumeDevice, volMounts map[string]string, volumes map[string]corev1.VolumeSource, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	devicePaths := map[string]bool{}
	deviceNames := map[string]bool{}
	for i, dev := range devices {
		idxPath := fldPath.Index(i)
		src, matched := volumes[dev.Name]
		isPVC := matched && (src.PersistentVolumeClaim != nil || src.Ephemeral != nil)
		if len(dev.Name) == 0 {
			allErrs = append(allErrs, field.Required(idxPath.Child("name"), ""))
		}
		if deviceNames[dev.Name] {
			allErrs = append(allErrs, field.Invalid(idxPath.Child("name"), dev.Name, "must be unique"))
		}
		if matched && !isPVC {
			allErrs = append(allErrs, field.Invalid(idxPath.Child("name"), dev.Name, "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode"))
		}
		if !matched {
			allErrs = append(allErrs, field.NotFound(idxPath.Child("name"), dev.Name))
		}
		if len(dev.DevicePath) == 0 {
			allErrs = append(allErrs, field.Required(idxPath.Child("devicePath"), ""))
		}
		if devicePaths[dev.DevicePath] {
			allErrs = append(allErrs, field.Invalid(idxPath.Child("devicePath"), dev.DevicePath, "must be unique"))
		}
		if len(dev.DevicePath) > 0 && len(validatePathNoBacksteps(dev.DevicePath, fldPath.Child("devicePath"))) > 0 {
			allErrs = append(allErrs, field.Invalid(idxPath.Child("devicePath"), dev.DevicePath, "can not contain backsteps ('..')"))
		} else {
			devicePaths[dev.DevicePath] = true
		}
		if _, ok := volMounts[dev.Name]; ok {
			allErrs = append(allErrs, field.Invalid(idxPath.Child("name"), dev.Name, "must not already exist in volumeMounts"))
		}
		for _, mp := range volMounts {
			if mp == dev.DevicePath {
				allErrs = append(allErrs, field.Invalid(idxPath.Child("devicePath"), dev.DevicePath, "must not already exist as a path in volumeMounts"))
				break
			}
		}
		if len(dev.Name) > 0 {
			deviceNames[dev.Name] = true
		}
	}
	return allErrs
}
