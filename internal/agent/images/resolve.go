package images

import (
	"errors"
	"fmt"
	"os/exec"
	"path"
	"slices"
	"strings"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// Resolver turns a container's image, command and args into the program to run.
// The zero value is not usable: Self must be set. A Resolver is a value without
// state and safe for concurrent use.
type Resolver struct {
	// Self is the path of the kubesvc binary; built-in images run it as
	// `Self builtin-image NAME ARGS...`.
	Self string
	// Maps are --image-map IMAGE=PROGRAM entries (ParseImageMap builds them): the
	// image runs PROGRAM (a path, or a name looked up with LookPath), as its
	// entrypoint. An IMAGE without tag or digest matches every tag of the
	// repository. Maps win over the built-in images.
	Maps map[string]string
	// LookPath finds a program of the machine (nil: exec.LookPath, with the agent's
	// PATH).
	LookPath func(file string) (string, error)
}

// Resolve returns the program a container runs, with kubelet's semantics: a
// non-empty command replaces the image's ENTRYPOINT (and drops its CMD), non-empty
// args replace its CMD. The first word of the result decides what runs:
//   - one of the image's own programs (for agnhost /agnhost or agnhost, for nginx
//     nginx or /usr/sbin/nginx, ...): the built-in, as Program{Path: Self, Args:
//     ["builtin-image", NAME, rest...]};
//   - a package manager (PackageManagers: apk, apt-get, ...), in any image: the
//     built-in apk, which says whether the machine has the tools;
//   - anything else: that program from the machine, found with LookPath; an
//     absolute path the machine lacks is looked up by its base name. Not found:
//     ErrProgramNotFound, naming the program.
//
// Images: the built-in ones with any registry, tag or digest; tool images (busybox,
// alpine, ubuntu, debian, curlimages/curl, jessie-dnsutils) have their real
// ENTRYPOINT and CMD and so run a shell or tool of the machine; Maps; any other
// image runs only with a command (else ErrUnknownImage, whose message names the
// built-in images and the command: escape). A malformed image is
// ErrInvalidImageName; nothing to run at all is ErrNoCommand.
//
// kubectl exec, exec probes and exec hooks resolve the same way, with the exec'd
// words as command and no args: Resolve(image, cmd, nil).
func (r Resolver) Resolve(image string, command, args []string) (runtime.Program, error) {
	ref, err := parseReference(image)
	if err != nil {
		return runtime.Program{}, err
	}
	im, known, err := r.lookup(ref)
	if err != nil {
		return runtime.Program{}, err
	}
	if !known && len(command) == 0 {
		return runtime.Program{}, fmt.Errorf("image %q: %w: kubesvc runs no container images; "+
			"its built-in images are %s, and %s are a shell with this machine's programs; "+
			"set command: in the container to run a program from this machine, "+
			"or map the image to a program with the agent's --image-map IMAGE=PROGRAM",
			image, ErrUnknownImage, builtinNames(), toolNames())
	}
	argv := kubeletArgv(im, command, args)
	if len(argv) == 0 {
		return runtime.Program{}, fmt.Errorf("image %q: %w: the container sets neither command nor args", image, ErrNoCommand)
	}
	return r.program(im, ref, argv)
}

// kubeletArgv is the argv kubelet asks the runtime for: the image's ENTRYPOINT and
// CMD, the container's command replacing the first (and dropping the image's CMD, as
// Docker does), its args replacing the CMD.
func kubeletArgv(im image, command, args []string) []string {
	entrypoint, cmd := im.entrypoint, im.cmd
	if len(command) > 0 {
		entrypoint, cmd = command, nil
	}
	if len(args) > 0 {
		cmd = args
	}
	return slices.Concat(entrypoint, cmd)
}

// program decides what argv[0] is, unwrapping `exec "$@"` entrypoints first.
func (r Resolver) program(im image, ref reference, argv []string) (runtime.Program, error) {
	for im.isWrapper(argv[0]) {
		rest := argv[1:]
		if len(rest) == 0 {
			return runtime.Program{}, fmt.Errorf("%s: %w after the entrypoint", argv[0], ErrNoCommand)
		}
		if im.dashProgram != "" && strings.HasPrefix(rest[0], "-") {
			rest = slices.Concat([]string{im.dashProgram}, rest)
		}
		argv = rest
	}
	switch {
	case im.mapped != "" && (argv[0] == im.mapped || path.Base(argv[0]) == path.Base(im.mapped)):
		return r.machine(slices.Concat([]string{im.mapped}, argv[1:]))
	case im.builtin != "" && im.isProgram(argv[0]):
		var tagArgs []string
		if im.tagArgs != nil {
			tagArgs = im.tagArgs(ref.tag)
		}
		return r.builtin(im.builtin, slices.Concat(tagArgs, argv[1:]))
	case slices.Contains(PackageManagers(), path.Base(argv[0])):
		return r.builtin(path.Base(argv[0]), argv[1:])
	default:
		return r.machine(argv)
	}
}

// builtin is the kubesvc binary in its hidden mode.
func (r Resolver) builtin(name string, args []string) (runtime.Program, error) {
	if r.Self == "" {
		return runtime.Program{}, errors.New("images: Resolver.Self (the kubesvc binary) is not set")
	}
	return runtime.Program{Path: r.Self, Args: slices.Concat([]string{SubcommandBuiltinImage, name}, args)}, nil
}

// machine is argv[0] from the machine's filesystem.
func (r Resolver) machine(argv []string) (runtime.Program, error) {
	lookPath := r.LookPath
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	p, err := lookPath(argv[0])
	if err != nil && strings.Contains(argv[0], "/") {
		// Images keep tools in other folders than the machine does
		// (/usr/local/bin/curl, /bin/bash): the same program by name will do.
		if q, err2 := lookPath(path.Base(argv[0])); err2 == nil {
			p, err = q, nil
		}
	}
	if err != nil {
		why := ""
		if !errors.Is(err, exec.ErrNotFound) {
			why = fmt.Sprintf(" (%v)", err)
		}
		return runtime.Program{}, fmt.Errorf("%q: %w%s: a kubesvc pod runs the programs of this machine; install it on the machine",
			argv[0], ErrProgramNotFound, why)
	}
	return runtime.Program{Path: p, Args: slices.Clone(argv[1:])}, nil
}

// lookup finds the image: a mapping first, then the built-in and tool images.
// known is false for an image kubesvc does not know.
func (r Resolver) lookup(ref reference) (im image, known bool, err error) {
	if program, ok, err := r.mapped(ref); err != nil {
		return image{}, false, err
	} else if ok {
		return image{display: ref.name(), mapped: program, entrypoint: []string{program}}, true, nil
	}
	for _, im := range slices.Concat(builtinImages(), toolImages()) {
		if slices.Contains(im.repos, ref.repo()) {
			return im, true, nil
		}
	}
	return image{}, false, nil
}

// mapped finds ref in Maps. An entry with a tag or digest matches only that tag or
// digest; the most specific entry wins.
func (r Resolver) mapped(ref reference) (program string, ok bool, err error) {
	best := -1
	for key, prog := range r.Maps {
		k, err := parseReference(key)
		if err != nil {
			return "", false, fmt.Errorf("--image-map %s=%s: %w", key, prog, err)
		}
		if k.name() != ref.name() || (k.tag != "" && k.tag != ref.tag) || (k.digest != "" && k.digest != ref.digest) {
			continue
		}
		score := 0
		if k.tag != "" {
			score++
		}
		if k.digest != "" {
			score += 2
		}
		if score > best || (score == best && prog < program) {
			best, program = score, prog
		}
	}
	return program, best >= 0, nil
}

// ParseImageMap parses --image-map values, each IMAGE=PROGRAM, into Resolver.Maps.
// It fails on a value without "=", an empty side, a malformed image, or one image
// mapped twice.
func ParseImageMap(values []string) (map[string]string, error) {
	maps := make(map[string]string, len(values))
	for _, v := range values {
		img, prog, ok := strings.Cut(v, "=")
		if !ok || img == "" || prog == "" {
			return nil, fmt.Errorf("--image-map %q: want IMAGE=PROGRAM", v)
		}
		if _, err := parseReference(img); err != nil {
			return nil, fmt.Errorf("--image-map %q: %w", v, err)
		}
		if _, dup := maps[img]; dup {
			return nil, fmt.Errorf("--image-map %q: image %s is mapped twice", v, img)
		}
		maps[img] = prog
	}
	return maps, nil
}
