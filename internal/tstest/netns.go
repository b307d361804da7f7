package tstest

import (
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// envNetNS marks a test binary started by PrivateNetwork inside its
// namespace; its value is the test to run there.
const envNetNS = "AGENTFED_TEST_NETNS"

// PrivateNetwork runs the calling top-level test again, in a child process
// inside a new network namespace (unshare -rn) whose only interface is
// loopback, up, with IPv4 multicast (224.0.0.0/4) routed to it. Nothing
// the test sends there can reach another interface or another host, which
// is what tests of multicast (mDNS) need.
//
// It returns true in the child, where the test goes on; in the parent it
// reports the child's outcome and returns false, and the test returns at
// once:
//
//	if !tstest.PrivateNetwork(t) {
//		return
//	}
//
// Where namespaces cannot be made (not Linux, no unshare or ip, user
// namespaces disabled) the test is skipped with the reason, or fails when
// the CI environment variable is set.
func PrivateNetwork(t *testing.T) bool {
	t.Helper()
	if os.Getenv(envNetNS) == t.Name() {
		checkOnlyLoopback(t)
		return true
	}
	if strings.Contains(t.Name(), "/") {
		t.Fatal("tstest.PrivateNetwork: call it from a top-level test")
	}
	unavailable := func(format string, args ...any) bool {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format+" (set CI to make this a failure)", args...)
		return false
	}
	if runtime.GOOS != "linux" {
		return unavailable("needs a Linux network namespace")
	}
	for _, tool := range []string{"unshare", "ip", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			return unavailable("needs %s in PATH for a private network namespace: %v", tool, err)
		}
	}
	args := []string{"-rn", "sh", "-c", `ip link set lo up && ip route add 224.0.0.0/4 dev lo && exec "$@"`, "sh",
		os.Args[0], "-test.run=^" + regexp.QuoteMeta(t.Name()) + "$", "-test.count=1", "-test.v"}
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), envNetNS+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil {
		if !strings.Contains(string(out), "=== RUN") { // the namespace, not the test, failed
			return unavailable("cannot make a private network namespace: %v: %s", err, strings.TrimSpace(string(out)))
		}
		t.Fatalf("in a private network namespace: %v\n%s", err, out)
	}
	if testing.Verbose() {
		t.Logf("in a private network namespace:\n%s", out)
	}
	if strings.Contains(string(out), "--- SKIP: "+t.Name()) {
		t.Skipf("skipped in the private network namespace:\n%s", out)
	}
	return false
}

// checkOnlyLoopback makes sure the child sees no interface but lo.
func checkOnlyLoopback(t *testing.T) {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 && i.Flags&net.FlagUp != 0 {
			t.Fatalf("private network namespace has interface %q up; refusing to send multicast", i.Name)
		}
	}
}
