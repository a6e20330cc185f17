package process

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/kubesvc/kubesvc/internal/agent/images"
)

// agentRootEnv makes the test binary a stand-in agent (testAgent) that starts one
// container on the root dir it names, for the tests that kill the agent.
const agentRootEnv = "PROCESS_TEST_AGENT_ROOT"

// TestMain lets the test binary stand in for kubesvc: the runtime under test runs
// Config.Self (this binary) as `containerinit shim|init DIR`, as kubesvc's hidden
// subcommand does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == SubcommandName {
		if err := ContainerInit(os.Args[2:], testInProcess); err != nil {
			fmt.Fprintln(os.Stderr, "containerinit:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if len(os.Args) > 3 && os.Args[1] == images.SubcommandBuiltinImage && os.Args[2] == testProgram {
		// The selftest program run directly (an exec of it: kubectl exec POD
		// -- the image's own program).
		os.Exit(runTestProgram(os.Args[3], os.Args[4:]))
	}
	if len(os.Args) > 1 && os.Args[1] == images.SubcommandBuiltinImage {
		// What the package-manager shims run: a stand-in that prints its arguments.
		fmt.Println(strings.Join(os.Args[1:], " "))
		os.Exit(0)
	}
	if root := os.Getenv(agentRootEnv); root != "" {
		if err := testAgent(root, os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "test agent:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testAgent starts the program args in a container, prints its ID and pid, and
// waits to be killed.
func testAgent(root string, args []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	r, err := New(Config{RootDir: root, Self: self})
	if err != nil {
		return err
	}
	// root context: this is the main function of a test helper process.
	ctx := context.Background()
	cs, err := r.Start(ctx, baseSpec("c", args...))
	if err != nil {
		return err
	}
	fmt.Printf("%s %d\n", cs.ID, cs.Pid)
	select {}
}
