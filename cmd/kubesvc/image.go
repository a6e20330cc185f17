package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kubesvc/kubesvc/internal/agent/images"
)

// newBuiltinImageCommand is the hidden `kubesvc builtin-image NAME [ARGS...]`: the
// process of a container of a built-in image (nginx, httpd, kubernetes-bootcamp,
// agnhost, pause) or of a package-manager command in a pod (apk, apt-get, ...). The
// node agent starts it; package images resolves which NAME and ARGS. It exits with
// the program's exit code.
func newBuiltinImageCommand() *cobra.Command {
	return &cobra.Command{
		Use:    images.SubcommandBuiltinImage + " NAME [ARGS...]",
		Short:  "Run a built-in image's program (the node agent starts it in a pod)",
		Hidden: true,
		// The arguments are the program's own (nginx -g ..., agnhost netexec
		// --http-port=8080): none of them are kubesvc's flags.
		DisableFlagParsing: true,
		Args:               cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// main turns the first SIGTERM or SIGINT into a cancelled context; a
			// container's process must instead handle the signals as its image does
			// (nginx stops gracefully, agnhost pause exits 2, porter dies by
			// SIGTERM), so they get their default action back here and each
			// built-in asks for the ones it handles.
			signal.Reset(syscall.SIGTERM, syscall.SIGINT)
			os.Exit(images.Run(cmd.Context(), images.Env{}, args[0], args[1:]))
			return nil
		},
	}
}
