package images

import (
	"fmt"
	"strings"
)

// reference is an image reference taken apart the way Docker normalizes it:
// "nginx" is docker.io/library/nginx, "registry.k8s.io/pause:3.10" has the registry
// registry.k8s.io, the path pause and the tag 3.10.
type reference struct {
	domain string // "docker.io" when the reference names no registry
	path   string // "library/nginx"
	tag    string // "" when none is given (Docker's "latest")
	digest string // "sha256:..." or ""
}

// parseReference normalizes an image reference. It checks the shape only (a
// registry host, lowercase path components, a tag, a digest "ALG:HEX"); whether the
// image exists is not a question without a registry. A malformed reference is
// ErrInvalidImageName.
func parseReference(s string) (reference, error) {
	invalid := func(why string) (reference, error) {
		return reference{}, fmt.Errorf("%w %q: %s", ErrInvalidImageName, s, why)
	}
	if s == "" {
		return invalid("empty")
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return invalid("contains white space or control characters")
	}
	var ref reference
	name, digest, hasDigest := strings.Cut(s, "@")
	if hasDigest {
		alg, hex, ok := strings.Cut(digest, ":")
		if !ok || alg == "" || hex == "" {
			return invalid("a digest is ALGORITHM:HEX")
		}
		ref.digest = digest
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		ref.tag = name[i+1:]
		name = name[:i]
		if ref.tag == "" {
			return invalid("empty tag")
		}
	}
	// Docker's rule: a first component with "." or ":", or "localhost", is a registry.
	if first, rest, ok := strings.Cut(name, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		ref.domain, ref.path = first, rest
	} else {
		ref.domain, ref.path = "docker.io", name
	}
	if ref.domain == "index.docker.io" {
		ref.domain = "docker.io"
	}
	if ref.domain == "docker.io" && !strings.Contains(ref.path, "/") {
		ref.path = "library/" + ref.path
	}
	for _, c := range strings.Split(ref.path, "/") {
		if c == "" {
			return invalid("empty path component")
		}
	}
	if strings.ToLower(ref.path) != ref.path {
		return invalid("repository name must be lowercase")
	}
	return ref, nil
}

// repo is the path without docker.io's "library/": the name built-in images are
// matched by, whatever the registry.
func (r reference) repo() string {
	return strings.TrimPrefix(r.path, "library/")
}

// name is the normalized repository, registry included: docker.io/library/nginx.
func (r reference) name() string {
	return r.domain + "/" + r.path
}
