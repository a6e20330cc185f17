package benchproc

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"sync"
)

// RequireSealedNetwork refuses a network namespace that has more than loopback:
// benchmarks that run a node agent or a proxy program the network they run in,
// so they run only under ../shared/tools/isolated. what names the program (for
// the message).
func RequireSealedNetwork(what string) error {
	ifs, err := net.Interfaces()
	if err != nil {
		return err
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			return errors.New("run me under ../shared/tools/isolated: this network namespace has " + i.Name + " (" + what + " programs the network it runs in)")
		}
	}
	return nil
}

// LineTail keeps the last 50 lines written to it (a process's log, for the
// message when it fails). Safe for concurrent use.
type LineTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *LineTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sc := bufio.NewScanner(strings.NewReader(string(p)))
	for sc.Scan() {
		l.lines = append(l.lines, sc.Text())
	}
	if len(l.lines) > 50 {
		l.lines = l.lines[len(l.lines)-50:]
	}
	return len(p), nil
}

// Tail is the kept lines.
func (l *LineTail) Tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
