package podnet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ensureSharedMountDir makes dir a mount point with shared propagation, as
// `ip netns add` does for /run/netns: a mount namespace made later (a pod's, by
// the runtime) receives the bind mounts as shared or slave copies, so unmounting a
// pod's namespace here unmounts it there too and the kernel can free it. Without
// this, every pod's mount namespace would pin the network namespaces of the pods
// that existed when it was made.
func ensureSharedMountDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("podnet: %w", err)
	}
	for bound := false; ; bound = true {
		err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) || bound {
			return fmt.Errorf("podnet: making %s a shared mount: %w", dir, err)
		}
		// EINVAL: dir is not a mount point yet; bind it onto itself.
		if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("podnet: bind-mounting %s onto itself: %w", dir, err)
		}
	}
}

// newNetNS creates a network namespace and bind-mounts it at path (which must not
// exist). The namespace is made on a thread of its own that goes back to the
// original namespace before it is released: if it cannot go back, it stays locked
// and the Go runtime ends it with the goroutine, so no other goroutine ever runs in
// the pod's namespace by accident.
func newNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("podnet: creating the namespace file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("podnet: creating the namespace file: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("podnet: the current network namespace: %w", err)
			return
		}
		defer orig.Close()
		ns, err := netns.New() // unshare(CLONE_NEWNET): this thread is in it now
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("podnet: creating a network namespace: %w", err)
			return
		}
		_ = ns.Close() // the bind mount keeps it
		mountErr := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, "")
		if err := netns.Set(orig); err != nil {
			done <- fmt.Errorf("podnet: returning to the node's network namespace: %w", err)
			return // thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		if mountErr != nil {
			mountErr = fmt.Errorf("podnet: bind-mounting the namespace at %s: %w", path, mountErr)
		}
		done <- mountErr
	}()
	if err := <-done; err != nil {
		_ = os.Remove(path)
		return err
	}
	return nil
}

// isNetNS tells whether path is a bind-mounted network namespace.
func isNetNS(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("podnet: %s: %w", path, err)
	}
	return st.Type == unix.NSFS_MAGIC, nil
}

// removeNetNS unmounts and removes the namespace file at path; absent is no error.
// The namespace itself ends when nothing else holds it (the pod's processes).
func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("podnet: unmounting %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("podnet: %w", err)
	}
	return nil
}
