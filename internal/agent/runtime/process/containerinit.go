package process

import (
	"errors"
	"fmt"
)

// SubcommandName is the hidden subcommand of the kubesvc binary that runs
// ContainerInit: the runtime starts `SELF containerinit MODE DIR`.
const SubcommandName = "containerinit"

// The modes of ContainerInit.
const (
	modeShim = "shim"
	modeInit = "init"
)

// errUsage: ContainerInit was called with arguments it does not know.
var errUsage = errors.New("usage: containerinit shim|init|run CONTAINER-DIR")

// ContainerInit is the hidden `kubesvc containerinit` subcommand, with the arguments
// after the subcommand's name. It is not meant to be run by hand: the runtime runs
// it in two modes, on the folder of a container (ROOT/containers/ID):
//
//	containerinit shim DIR   supervise the container: start its init, copy its
//	                         output into the CRI log, record its pid and exit code;
//	                         returns once the program has exited
//	containerinit init DIR   in the container's new namespaces: join the pod's
//	                         network namespace, mount, set the hostname and user,
//	                         and execute the program (never returns on success)
//	containerinit run DIR    a built-in image's container that is its own shim
//	                         (self.go): set up as init does, copy its own output
//	                         into the CRI log, run the program in-process, record
//	                         the exit (exits with the program's code)
//
// The binary that registers it must call it before doing anything else that starts
// goroutines with a purpose (it is fine under cobra) and exit non-zero on an error.
//
// inProcess, when not nil, lets init run a program itself instead of executing it
// (see InProcessFunc).
func ContainerInit(args []string, inProcess InProcessFunc) error {
	if len(args) != 2 || args[1] == "" {
		return errUsage
	}
	restoreRuntimeDefaults()
	switch args[0] {
	case modeShim:
		return runShim(args[1])
	case modeInit:
		return runInit(args[1], inProcess)
	case modeRun:
		return runSelf(args[1], inProcess)
	default:
		return fmt.Errorf("unknown mode %q: %w", args[0], errUsage)
	}
}
