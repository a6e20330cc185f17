package sim

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// A simulated node pulls no image, so it cannot know whether an image exists. What
// it can check is what the kubelet checks before it asks the runtime for an image:
// that the reference parses. The grammar is github.com/distribution/reference's
// (the parser behind the kubelet's applyDefaultImageTag), written out here.
const (
	refAlnum         = `[a-z0-9]+`
	refSeparator     = `(?:[._]|__|[-]+)`
	refPathComponent = refAlnum + `(?:` + refSeparator + refAlnum + `)*`
	refDomainLabel   = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	refHost          = `(?:` + refDomainLabel + `(?:\.` + refDomainLabel + `)*|\[[a-fA-F0-9:]+\])`
	refName          = `(?:` + refHost + `(?::[0-9]+)?/)?` + refPathComponent + `(?:/` + refPathComponent + `)*`
	refTag           = `[\w][\w.-]{0,127}`
	refDigest        = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}`
	refMaxNameLength = 255
)

// The expressions are compiled on first use, not at package initialisation: every
// process of the kubesvc binary runs the initialisers, a container's process
// among them, and this one took 1.7 ms of each start.
var (
	referenceRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(` + refName + `)(?::(` + refTag + `))?(?:@(` + refDigest + `))?$`)
	})
	identifierRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-f0-9]{64}$`) })
)

// digestHexLength is the hex length of each digest algorithm a reference may use.
var digestHexLength = map[string]int{"sha256": 64, "sha384": 96, "sha512": 128}

// errInvalidReference is distribution/reference's ErrReferenceInvalidFormat.
var errInvalidReference = errors.New("invalid reference format")

// imageReferenceError returns why image is not a valid image reference, in the
// kubelet's words ("couldn't parse image name ..."), or nil when it parses. A nil
// error says nothing about whether the image exists.
func imageReferenceError(image string) error {
	if err := parseNormalizedNamed(image); err != nil {
		return fmt.Errorf("couldn't parse image name %q: %w", image, err)
	}
	return nil
}

// parseNormalizedNamed follows distribution/reference.ParseNormalizedNamed.
func parseNormalizedNamed(s string) error {
	if identifierRE().MatchString(s) {
		return fmt.Errorf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", s)
	}
	domain, remainder := splitDockerDomain(s)
	remote, _, _ := strings.Cut(remainder, ":")
	if strings.ToLower(remote) != remote {
		return fmt.Errorf("%w: repository name (%s) must be lowercase", errInvalidReference, remote)
	}
	return parseReference(domain + "/" + remainder)
}

// splitDockerDomain splits the registry off a reference as Docker does: a first
// path element without "." or ":" that is not "localhost" is not a registry.
func splitDockerDomain(name string) (domain, remainder string) {
	first, rest, ok := strings.Cut(name, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost" && strings.ToLower(first) == first) {
		domain, remainder = "docker.io", name
	} else {
		domain, remainder = first, rest
	}
	if domain == "docker.io" && !strings.Contains(remainder, "/") {
		remainder = "library/" + remainder
	}
	return domain, remainder
}

// parseReference follows distribution/reference.Parse.
func parseReference(s string) error {
	m := referenceRE().FindStringSubmatch(s)
	if m == nil {
		if referenceRE().MatchString(strings.ToLower(s)) {
			return errors.New("repository name must be lowercase")
		}
		return errInvalidReference
	}
	if len(m[1]) > refMaxNameLength {
		return fmt.Errorf("repository name must not be more than %d characters", refMaxNameLength)
	}
	if m[3] != "" {
		alg, hex, _ := strings.Cut(m[3], ":")
		n, ok := digestHexLength[alg]
		switch {
		case !ok:
			return errors.New("unsupported digest algorithm")
		case len(hex) != n:
			return errors.New("invalid checksum digest length")
		case strings.ToLower(hex) != hex:
			return errors.New("invalid checksum digest format")
		}
	}
	return nil
}
