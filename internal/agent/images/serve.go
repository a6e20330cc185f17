package images

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
)

// serveUntilSignal serves hs on ln until a signal arrives on sigs or ctx ends. On
// the first signal it calls onSignal (to log it) and shuts down gracefully: the
// listener closes and requests in flight finish. A second signal, or ctx ending,
// closes every connection at once. It returns nil after a stop, or the error that
// ended serving.
func serveUntilSignal(ctx context.Context, hs *http.Server, ln net.Listener, sigs <-chan os.Signal, onSignal func(os.Signal)) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
		_ = hs.Close()
		<-errc
		return nil
	case sig := <-sigs:
		onSignal(sig)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-sctx.Done():
		}
	}()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	}
	return nil
}

// signalNumber is a signal's number (0 for a signal that is not a syscall.Signal).
func signalNumber(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return int(s)
	}
	return 0
}

// signalName is a signal's name as nginx and the kernel headers write it: SIGTERM.
func signalName(sig os.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGWINCH:
		return "SIGWINCH"
	}
	return "SIG" + strings.ToUpper(sig.String())
}
