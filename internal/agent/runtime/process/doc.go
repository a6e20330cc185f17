// Package process is the real runtime.Runtime: every container is a process on this
// machine, in the pod's network namespace and in mount and UTS namespaces of its
// own, supervised by a small per-container shim that survives the agent.
//
// The agent (this package's Runtime) starts, for each container, the runner (the
// small kubesvc-runner, Config.Runner, or else the kubesvc binary, Config.Self) in a
// hidden mode, `RUNNER containerinit shim DIR`, in a session of its own: the shim,
// like containerd-shim. The shim starts `RUNNER containerinit init DIR` in new
// mount and UTS namespaces and a process group of its own, forking it from a
// thread that has joined the pod's network namespace, so that init is born there
// with every thread; init makes its mounts slaves of the machine's, binds the
// pod's files and volumes, sets the hostname, drops to the container's user, and
// executes the program, so that the program keeps init's pid. A program that is
// the runner itself in its builtin-image mode (a built-in image run as root; the
// runtime points such a program at the runner) is run by init in-process instead, when the
// caller of ContainerInit says so (InProcessFunc). Such a container, when it runs
// as root without stdin or a terminal, is started without a shim: one process,
// `RUNNER containerinit run DIR`, born in the container's namespaces, is its own
// shim (self.go): one start of the binary per container instead of two. The shim
// copies the program's stdout and
// stderr into the container's log in the CRI format, records the program's pid
// and, when it exits, its exit code, and then exits itself.
//
//	agent (Runtime) ──Start──▶ shim (setsid; writes pid, exit, the CRI log)
//	                              └─▶ init (CLONE_NEWNS|CLONE_NEWUTS, setpgid;
//	                                   setns net, mounts, hostname, uid) ─exec─▶ program
//
// A container with stdin or a terminal (ContainerSpec.Stdin, TTY) has its shim
// hold its stdin pipe or its pseudo-terminal and serve a unix socket in its folder
// through which Attach reaches the program (attach.go, attachserver.go); Attach to
// any other container follows its log. New writes the package-manager shims
// (images.Shims) to ROOT/bin, first in the PATH of a container that sets none.
//
// Everything a Runtime knows is on disk under Config.RootDir, so a new Runtime on
// the same directory (the agent restarted, even after SIGKILL) adopts the running
// containers: ROOT/containers/ID/state.json (the spec, written by the agent),
// pid (the program's and the shim's pids with their start times, written by the
// shim) and exit (exit code, written by the shim). See README.md for the contract.
package process
