package process

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kubesvc/kubesvc/internal/agent/images"
)

// The package-manager shims: a pod has no package manager, and the built-in
// answer (images.Shims: `apk`, `apt-get`, ... as /bin/sh scripts running
// `kubesvc builtin-image apk ARGS`) is reached by a shell in the pod only through
// PATH (kubectl exec -it POD -- sh, then apk add curl, as the seeds do). The
// runtime writes them, mode 0755, to ROOT/bin, and a container whose env sets no
// PATH gets ROOT/bin first in the default one (complete); exec sessions run with
// the container's env and so find them too. A pod that sets its own PATH keeps it
// exactly (it names its own programs; `apk` as a command's first word still runs
// the built-in, as images.Resolve decides).

// shimsDirName is the folder of the shims under the root dir.
const shimsDirName = "bin"

// ShimsDir is the folder of the package-manager shims, first in the PATH of a
// container whose env sets none.
func (r *Runtime) ShimsDir() string { return filepath.Join(r.root, shimsDirName) }

// defaultPath is the PATH of a container whose env sets none: the shims, then
// DefaultPath.
func (r *Runtime) defaultPath() string { return r.ShimsDir() + ":" + DefaultPath }

// writeShims makes dir hold exactly the shims of images.Shims(self), mode 0755,
// each written to a temporary name and renamed (a shell that runs one while
// another agent writes it sees the old or the new script), a file already right
// left alone; other files in dir (shims of an older kubesvc) are removed.
func writeShims(dir, self string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("package-manager shims: %w", err)
	}
	// Searchable by a container's user whatever the umask was.
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("package-manager shims: %w", err)
	}
	shims := images.Shims(self)
	for name, data := range shims {
		if err := writeShim(filepath.Join(dir, name), data); err != nil {
			return fmt.Errorf("package-manager shim %s: %w", name, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("package-manager shims: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if _, ok := shims[e.Name()]; !ok {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("package-manager shims: %w", err)
	}
	return nil
}

// writeShim writes one executable script at path unless it is already there.
func writeShim(path string, data []byte) error {
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == 0o755 {
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			return nil
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o755)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}
