// Package meta holds the repository's meta-tests: checks over the source tree
// rather than over behaviour. They read the Go files of the module (go/build and
// go/parser, no go command) and check that
//   - every package under internal/ and cmd/ has a package doc comment;
//   - no file imports a banned dependency (bannedImports, each with its reason);
//   - non-test code under internal/ neither starts from context.Background() or
//     context.TODO() (a context is passed down from the caller) nor registers with
//     a process-global metrics registry (one is injected).
//
// A root context that is really needed (a deadline that must outlive an ended
// context, say) is allowed by a comment on its line or the line above that starts
// with "root context:" and says why. Test support packages (files that import
// "testing") are exempt: they run under a test, not under a caller.
package meta
