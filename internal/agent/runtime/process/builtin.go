package process

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/kubesvc/kubesvc/internal/agent/images"
	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// BuiltinInProcess is the InProcessFunc of an executable with the builtin-image
// mode (kubesvc, kubesvc-runner): a program that is this very executable in that
// mode (`SELF builtin-image NAME ARGS...`) runs in the calling process, as it
// would after an exec, so the executable starts once per container.
func BuiltinInProcess() InProcessFunc {
	return func(p runtime.Program) (func() int, bool) {
		if len(p.Args) < 2 || p.Args[0] != images.SubcommandBuiltinImage || !sameFile(p.Path, "/proc/self/exe") {
			return nil, false
		}
		return func() int {
			// As after an exec into builtin-image: the image handles its own
			// signals.
			signal.Reset(syscall.SIGTERM, syscall.SIGINT)
			// The built-in is this process's program, as after an exec; it ends
			// with the process (its own signals stop it).
			// root context: the program's main, run in-process.
			return images.Run(context.Background(), images.Env{}, p.Args[1], p.Args[2:])
		}, true
	}
}

// sameFile reports whether the paths name one file (after symlinks).
func sameFile(a, b string) bool {
	ra, err := filepath.EvalSymlinks(a)
	if err != nil {
		return false
	}
	fa, err := os.Stat(ra)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
