package images

import "strings"

// Shims returns, by program name (PackageManagers), a small /bin/sh script that runs
// the built-in package-manager answer: `exec SELF builtin-image apk "$@"`. Resolve
// covers a package manager that is a container's or an exec's first word; a pod's
// shell (kubectl exec -it POD -- sh, then apk add curl, as the seeds do) finds
// programs through PATH instead, so the runtime writes these scripts, mode 0755, to a
// folder that comes first in the container's PATH (and keeps the pod from running
// the machine's own apt-get as root).
func Shims(self string) map[string][]byte {
	shims := make(map[string][]byte)
	for _, name := range PackageManagers() {
		shims[name] = []byte("#!/bin/sh\n# kubesvc: a pod has no package manager; this says whether the machine has the programs.\nexec " +
			shellQuote(self) + " " + SubcommandBuiltinImage + " " + name + " \"$@\"\n")
	}
	return shims
}

// shellQuote quotes s for sh: in single quotes, each single quote inside closed, escaped with a backslash and reopened.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
