package multinode

import (
	"bytes"
	"io"
	"sync"
)

// nodeLogWriter passes an agent's output on line by line, each line tagged
// with the node's name (" node=NAME" at its end, a logfmt field like the rest
// of the line): the agents of all the nodes write to one stderr.
type nodeLogWriter struct {
	mu   sync.Mutex
	out  io.Writer
	tag  []byte
	line []byte
}

func newNodeLogWriter(out io.Writer, node string) *nodeLogWriter {
	return &nodeLogWriter{out: out, tag: []byte(" node=" + node)}
}

// Write writes every complete line of p (and of what came before) to out; a
// partial line waits for its end.
func (w *nodeLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			return len(p), nil
		}
		out := make([]byte, 0, i+len(w.tag)+1)
		out = append(append(append(out, w.line[:i]...), w.tag...), '\n')
		w.line = w.line[i+1:]
		if _, err := w.out.Write(out); err != nil {
			return len(p), err
		}
	}
}
