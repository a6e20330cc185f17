// Package component runs the named, long-running parts of one kubesvc process — the
// API server, the controllers, node agents, and later the proxy, DNS and load
// balancer — under one errgroup, so that a new part joins `kubesvc up` by being added
// to a Runner, without new channels or goroutines in the command.
//
// The rules, in one place:
//   - Every component starts at once, each in its own goroutine. A component that
//     needs another one ready (a node agent needs the API server) waits for it inside
//     its own Run, selecting on its ctx as well.
//   - A component runs until its ctx ends. Returning nil before that is an error
//     (ErrStoppedEarly): in a server process a part that quietly stops is a bug, and
//     one-shot work belongs at the start of a component's Run, not in a component of
//     its own.
//   - The first error, ErrStoppedEarly included, or the end of the Runner's ctx stops
//     the others. They are stopped one by one in the reverse of the order they were
//     added: each component's ctx is cancelled and the Runner waits for its Run to
//     return before cancelling the one added before it. So clients of the API server
//     (controllers releasing their leader Lease, agents) finish while the server still
//     answers. A component that ignores its ctx therefore holds up the shutdown of
//     the ones added before it.
//   - Run returns every error a component returned, each prefixed with the
//     component's name (`component "agent/sim-node-1": ...`, wrapped with %w), the
//     first one first. An error that wraps context.Canceled, returned after the
//     component's ctx was cancelled, is a clean stop and is not reported.
package component
