package process

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubesvc/kubesvc/internal/agent/runtime"
	"github.com/kubesvc/kubesvc/internal/agent/runtime/cgroups"
)

// Files of a container's directory ROOT/containers/ID.
const (
	// stateFile is the container's spec, written by the agent before the shim
	// starts and never changed afterwards.
	stateFile = "state.json"
	// pidFile is written by the shim once the program runs (pidRecord).
	pidFile = "pid"
	// exitFile is written by the shim when the program has exited (exitRecord).
	exitFile = "exit"
	// shimLogFile takes the shim's own stdout and stderr (its errors).
	shimLogFile = "shim.log"
)

// containersDir is the folder of the container directories under the root dir.
const containersDir = "containers"

// stateVersion is the format of the files; a Runtime skips containers of another.
const stateVersion = 1

// containerState is state.json.
type containerState struct {
	Version int `json:"version"`
	ID      runtime.ContainerID
	// Spec is the spec as started: Env completed with a default PATH, LogPath set.
	Spec runtime.ContainerSpec
	// LogMaxSize is the size at which the shim rotates the log.
	LogMaxSize int64
	CreatedAt  time.Time
	// Cgroup is the container's group when it has resource limits: init joins
	// it, the shim reads its OOM kills, Remove deletes it.
	Cgroup *cgroups.Cgroup `json:",omitempty"`
}

// pidRecord is the pid file: who runs, and how to know them again (a pid alone can
// be reused; the pid, its start time and the boot together cannot).
type pidRecord struct {
	Pid           int       `json:"pid"`
	StartTime     uint64    `json:"startTime"`
	ShimPid       int       `json:"shimPid"`
	ShimStartTime uint64    `json:"shimStartTime"`
	BootID        string    `json:"bootID"`
	StartedAt     time.Time `json:"startedAt"`
}

// exitRecord is the exit file.
type exitRecord struct {
	ExitCode int32 `json:"exitCode"`
	// Signal names the signal that ended the program ("" when it exited).
	Signal     string    `json:"signal,omitempty"`
	FinishedAt time.Time `json:"finishedAt"`
	// StartError is set when the program never ran: what failed.
	StartError string `json:"startError,omitempty"`
	// OOMKilled: the kernel's OOM killer ended a process of the container's
	// cgroup (over its memory limit).
	OOMKilled bool `json:"oomKilled,omitempty"`
}

// startReport is what the shim tells the agent on its report pipe: the program
// runs (Pid) or could not start (Error).
type startReport struct {
	Pid       int       `json:"pid,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	Error     string    `json:"error,omitempty"`
}

// writeJSONAtomic writes v to path through a temporary file and a rename, so that a
// reader sees the old content or the new one, never a part (writeJSONAtomicAt in
// path's folder).
func writeJSONAtomic(path string, v any) error {
	dir, err := os.OpenFile(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer dir.Close()
	if err := writeJSONAtomicAt(dir, filepath.Base(path), v); err != nil {
		return fmt.Errorf("%s: %w", filepath.Dir(path), err)
	}
	return nil
}

// readJSON reads path into v; a missing file is an error satisfying
// errors.Is(err, fs.ErrNotExist).
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// procStat is what the runtime needs of /proc/PID/stat.
type procStat struct {
	// State is the one-letter process state (R, S, D, Z, ...).
	State byte
	// StartTime is the start time in clock ticks after boot (field 22).
	StartTime uint64
}

// readProcStat reads /proc/PID/stat.
func readProcStat(pid int) (procStat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(data)
}

// parseProcStat parses the content of /proc/PID/stat. The command name (field 2)
// is in parentheses and may itself contain spaces and parentheses, so the fields
// are counted from the last ')'.
func parseProcStat(data []byte) (procStat, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse /proc stat %q: no command name", data)
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is field 3 (state); field 22 (starttime) is fields[19].
	if len(fields) < 20 || len(fields[0]) != 1 {
		return procStat{}, fmt.Errorf("parse /proc stat %q: too few fields", data)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat start time: %w", err)
	}
	return procStat{State: fields[0][0], StartTime: start}, nil
}

// bootID identifies this boot of the machine ("" when the kernel does not say).
func bootID() string {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// alive reports whether pid is the process that started at start in this boot and
// has not exited (a zombie has exited).
func alive(pid int, start uint64, boot string) bool {
	if pid <= 0 {
		return false
	}
	if boot != "" && boot != bootID() {
		return false
	}
	st, err := readProcStat(pid)
	if err != nil {
		return false
	}
	return st.StartTime == start && st.State != 'Z' && st.State != 'X'
}

// isNotExist reports whether err says a file does not exist.
func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
