package images

import (
	"context"
	"fmt"
	"strings"
)

// packagePrograms returns the programs a package provides, for the packages whose
// programs are not named like the package (Alpine, Debian and Fedora names).
func packagePrograms(pkg string) []string {
	switch pkg {
	case "bind-tools", "dnsutils", "bind-utils", "bind9-dnsutils":
		return []string{"dig", "nslookup", "host"}
	case "iputils", "iputils-ping", "inetutils-ping":
		return []string{"ping"}
	case "iproute2", "iproute":
		return []string{"ip"}
	case "netcat-openbsd", "netcat-traditional", "netcat", "nmap-ncat", "ncat", "busybox-extras":
		return []string{"nc"}
	case "net-tools":
		return []string{"netstat", "ifconfig"}
	case "procps", "procps-ng":
		return []string{"ps"}
	case "telnet", "inetutils-telnet":
		return []string{"telnet"}
	case "vim", "vim-tiny":
		return []string{"vi"}
	case "ca-certificates", "tzdata":
		// Data, not programs: the machine's own are what a pod uses.
		return nil
	case "python3", "py3-pip", "python3-pip":
		return []string{"python3"}
	case "openssh-client", "openssh-clients":
		return []string{"ssh"}
	case "ldns-tools", "ldnsutils":
		return []string{"drill"}
	}
	return []string{pkg}
}

// runPackageManager is the built-in that package-manager commands run in a pod
// (apk add curl, apt-get install -y dnsutils, ...). A pod runs the machine's
// programs and has no packages to install, so it says, for each package asked for,
// whether the machine has its programs, and exits 0 when it has them all, 1 when
// some are missing (naming them). update/upgrade/del and the like change nothing
// and exit 0; other commands exit 1.
func runPackageManager(name string) program {
	return func(_ context.Context, env Env, args []string) int {
		var words []string
		for _, a := range args {
			if !strings.HasPrefix(a, "-") {
				words = append(words, a)
			}
		}
		if len(words) == 0 {
			fmt.Fprintf(env.Stderr, "kubesvc: %s: no package manager in a kubesvc pod: a pod runs the programs of this machine; `%s add PACKAGE` says whether the machine has them\n", name, name)
			return 1
		}
		switch words[0] {
		case "add", "install":
		case "update", "upgrade", "makecache", "check-update", "clean", "cache", "del", "remove", "purge", "autoremove":
			fmt.Fprintf(env.Stdout, "kubesvc: no package manager in a kubesvc pod; `%s %s` changes nothing: a pod runs the programs of this machine\n", name, words[0])
			return 0
		default:
			fmt.Fprintf(env.Stderr, "kubesvc: no package manager in a kubesvc pod; `%s %s` is not available: a pod runs the programs of this machine\n", name, words[0])
			return 1
		}
		var missing []string
		for _, pkg := range words[1:] {
			pkg, _, _ = strings.Cut(pkg, "=") // curl=8.5.0-r0: a pinned version
			for _, prog := range packagePrograms(pkg) {
				p, err := env.LookPath(prog)
				if err != nil {
					missing = append(missing, prog)
					continue
				}
				fmt.Fprintf(env.Stdout, "kubesvc: no package manager in a kubesvc pod; %s is available from this machine (%s)\n", prog, p)
			}
		}
		if len(missing) > 0 {
			fmt.Fprintf(env.Stderr, "kubesvc: no package manager in a kubesvc pod, and this machine has no %s: install it on the machine (a pod runs the machine's programs)\n", strings.Join(missing, ", "))
			return 1
		}
		return 0
	}
}
