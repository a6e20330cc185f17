// Package images resolves the image a pod names to the program its container runs,
// without a container runtime:
//   - images built into kubesvc (nginx, httpd, kubernetes-bootcamp, agnhost, pause),
//     with any registry prefix and tag, run kubesvc itself in a hidden mode;
//   - inside a container of a built-in image, the image's own program paths
//     (/agnhost, nginx) run the built-in, and every other command comes from the
//     machine's filesystem;
//   - a container of any other image whose command is set runs that program from the
//     machine; --image-map IMAGE=PROGRAM adds mappings;
//   - anything else cannot run: ErrUnknownImage, with a message that names the
//     built-in images and the command: escape (the agent shows it as
//     ErrImagePull/ImagePullBackOff).
//
// Resolver is the API the runtime uses; Run is the hidden mode's entry
// (`kubesvc builtin-image NAME [ARGS...]`). README.md in this folder describes the
// images and where they differ from the real ones.
package images

import (
	"errors"
	"path"
	"slices"
	"strings"
)

// ErrUnknownImage: the image is neither built in nor mapped, and the container sets
// no command.
var ErrUnknownImage = errors.New("image is not built into kubesvc")

// ErrProgramNotFound: the program a container runs is to come from the machine's
// filesystem, and the machine has no such program.
var ErrProgramNotFound = errors.New("executable file not found on this machine")

// ErrInvalidImageName: the image is not a valid image reference (kubelet's
// InvalidImageName).
var ErrInvalidImageName = errors.New("invalid image name")

// ErrNoCommand: neither the image nor the container says what to run (an image
// mapped or known without an entrypoint, and a container with neither command nor
// args).
var ErrNoCommand = errors.New("no command specified")

// Names of the built-in programs, as `kubesvc builtin-image NAME` takes them.
const (
	ProgramNginx    = "nginx"
	ProgramHTTPD    = "httpd"
	ProgramBootcamp = "kubernetes-bootcamp"
	ProgramAgnhost  = "agnhost"
	ProgramPause    = "pause"
	// ProgramAPK answers package-manager commands (apk add, apt-get install, ...)
	// in a pod: it says whether the machine has the tools. The other package
	// managers' names (PackageManagers) run the same program.
	ProgramAPK = "apk"
)

// SubcommandBuiltinImage is the hidden subcommand of the kubesvc binary that runs a
// built-in program: `kubesvc builtin-image NAME [ARGS...]`.
const SubcommandBuiltinImage = "builtin-image"

// PackageManagers returns the program names that, as argv[0] in any container, run
// the built-in ProgramAPK instead of a package manager of the machine (a pod must not
// install packages on the machine, and usually cannot).
func PackageManagers() []string {
	return []string{"apk", "apt-get", "apt", "yum", "dnf", "microdnf"}
}

// image is an image kubesvc knows: built in, or a tool image whose programs come from
// the machine.
type image struct {
	// display is the image's usual name, for messages.
	display string
	// repos are the repository paths that name the image, without the registry and
	// without docker.io's "library/" (any registry prefix matches).
	repos []string
	// builtin is the built-in program that the image's programs run; "" for a tool
	// image (a shell from the machine).
	builtin string
	// programs are the image's own program paths: argv[0] equal to one of them, or
	// with the same base name, runs the built-in.
	programs []string
	// entrypoint and cmd are the image's ENTRYPOINT and CMD.
	entrypoint, cmd []string
	// wrappers are entrypoint scripts that end in `exec "$@"` (docker-entrypoint.sh):
	// argv[0] equal to one of them runs the rest of argv.
	wrappers []string
	// dashProgram, when set, is what a wrapper runs when the first argument starts
	// with "-" (curlimages/curl's entrypoint: `curl-image -s URL` runs curl -s URL).
	dashProgram string
	// tagArgs, when set, gives the built-in's first arguments for an image tag (the
	// kubernetes-bootcamp v2 image answers v=2).
	tagArgs func(tag string) []string
	// mapped is the machine program of an image mapped with --image-map (its
	// entrypoint); then builtin is "".
	mapped string
}

// builtinImages returns the images built into kubesvc.
func builtinImages() []image {
	return []image{
		{
			display: "nginx",
			// registry.k8s.io/e2e-test-images/nginx and public.ecr.aws/nginx/nginx
			// are the same nginx.
			repos:      []string{"nginx", "nginx/nginx", "e2e-test-images/nginx"},
			builtin:    ProgramNginx,
			programs:   []string{"/usr/sbin/nginx", "/usr/sbin/nginx-debug"},
			entrypoint: []string{"/docker-entrypoint.sh"},
			cmd:        []string{"nginx", "-g", "daemon off;"},
			wrappers:   []string{"/docker-entrypoint.sh"},
		},
		{
			display:  "httpd",
			repos:    []string{"httpd", "e2e-test-images/httpd"},
			builtin:  ProgramHTTPD,
			programs: []string{"/usr/local/bin/httpd-foreground", "/usr/local/apache2/bin/httpd"},
			cmd:      []string{"httpd-foreground"},
		},
		{
			display: "gcr.io/google-samples/kubernetes-bootcamp",
			// jocatalin/kubernetes-bootcamp:v2 is the "update your app" image of
			// the Kubernetes basics tutorial.
			repos:    []string{"google-samples/kubernetes-bootcamp", "jocatalin/kubernetes-bootcamp"},
			builtin:  ProgramBootcamp,
			programs: []string{"/usr/local/bin/node"},
			// The real CMD is `/bin/sh -c "node server.js"`; written as the exec
			// form, so that node resolves to the built-in rather than to the
			// machine's sh running the machine's node.
			cmd: []string{"node", "server.js"},
			tagArgs: func(tag string) []string {
				if tag == "v2" {
					return []string{"--response-version=2"}
				}
				return nil
			},
		},
		{
			display:    "registry.k8s.io/e2e-test-images/agnhost",
			repos:      []string{"e2e-test-images/agnhost", "kubernetes-e2e-test-images/agnhost"},
			builtin:    ProgramAgnhost,
			programs:   []string{"/agnhost"},
			entrypoint: []string{"/agnhost"},
			cmd:        []string{"pause"},
		},
		{
			display:    "registry.k8s.io/pause",
			repos:      []string{"pause", "google_containers/pause", "google-containers/pause"},
			builtin:    ProgramPause,
			programs:   []string{"/pause"},
			entrypoint: []string{"/pause"},
		},
	}
}

// toolImages returns the images that are a shell (or a tool) with the machine's
// programs: what their real images hold, the machine usually has.
func toolImages() []image {
	return []image{
		{display: "busybox", repos: []string{"busybox", "e2e-test-images/busybox"}, cmd: []string{"sh"}},
		{display: "alpine", repos: []string{"alpine"}, cmd: []string{"/bin/sh"}},
		{display: "ubuntu", repos: []string{"ubuntu"}, cmd: []string{"/bin/bash"}},
		{display: "debian", repos: []string{"debian"}, cmd: []string{"bash"}},
		{
			display:     "curlimages/curl",
			repos:       []string{"curlimages/curl"},
			entrypoint:  []string{"/entrypoint.sh"},
			cmd:         []string{"curl"},
			wrappers:    []string{"/entrypoint.sh"},
			dashProgram: "curl",
		},
		{
			display: "registry.k8s.io/e2e-test-images/jessie-dnsutils",
			repos:   []string{"e2e-test-images/jessie-dnsutils", "e2e-test-images/glibc-dns-testing"},
			cmd:     []string{"bash"},
		},
	}
}

// isProgram reports whether argv0 is one of the image's own programs.
func (im image) isProgram(argv0 string) bool {
	return matchProgram(im.programs, argv0)
}

// isWrapper reports whether argv0 is one of the image's `exec "$@"` entrypoints.
func (im image) isWrapper(argv0 string) bool {
	return matchProgram(im.wrappers, argv0)
}

// matchProgram reports whether argv0 names one of paths: the same path, or the same
// base name (images put programs in different folders, and commands name them by
// base name through PATH).
func matchProgram(paths []string, argv0 string) bool {
	if argv0 == "" {
		return false
	}
	base := path.Base(argv0)
	return slices.ContainsFunc(paths, func(p string) bool { return p == argv0 || path.Base(p) == base })
}

// builtinNames returns the usual names of the built-in images, for messages.
func builtinNames() string {
	var names []string
	for _, im := range builtinImages() {
		names = append(names, im.display)
	}
	return strings.Join(names, ", ")
}

// toolNames returns the usual names of the tool images, for messages.
func toolNames() string {
	var names []string
	for _, im := range toolImages() {
		names = append(names, im.display)
	}
	return strings.Join(names, ", ")
}
