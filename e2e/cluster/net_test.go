package cluster

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// lan is a bridge in the root network namespace that every host's veth
// joins: the server and the scripted model listen on the bridge's address,
// so a host reaches them only through its veth.
type lan struct {
	bridge string
	prefix string // "10.x.y." of the /24
	tag    string // makes interface and namespace names unique per test process
}

// newLAN creates the bridge on a /24 no interface here uses yet, and
// deletes it when t ends.
func newLAN(t *testing.T) *lan {
	t.Helper()
	tag := fmt.Sprintf("%05d", os.Getpid()%100000)
	l := &lan{bridge: "csbr" + tag, tag: tag}
	used := ipOut(t, "-4", "addr")
	for {
		p := fmt.Sprintf("10.%d.%d.", 100+rand.IntN(100), rand.IntN(250))
		if !strings.Contains(used, " "+p) {
			l.prefix = p
			break
		}
	}
	ip(t, "link", "add", l.bridge, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", l.bridge).Run() })
	ip(t, "addr", "add", l.gateway()+"/24", "dev", l.bridge)
	ip(t, "link", "set", l.bridge, "up")
	return l
}

// gateway is the bridge's address: where the server and the model listen.
func (l *lan) gateway() string { return l.prefix + "1" }

// netns is one host's network namespace with a veth pair to the bridge.
type netns struct {
	name, addr string
	veth       string // the root-namespace end
}

// addNetns creates namespace n (10.x.y.(10+n)) joined to the bridge. The
// caller deletes it (del), also when t ends.
func (l *lan) addNetns(t *testing.T, n int, name string) *netns {
	t.Helper()
	ns := &netns{name: "cs" + l.tag + "-" + name, addr: fmt.Sprintf("%s%d", l.prefix, 10+n), veth: fmt.Sprintf("cs%sv%d", l.tag, n)}
	peer := ns.veth + "p"
	ip(t, "netns", "add", ns.name)
	t.Cleanup(ns.del)
	ip(t, "link", "add", ns.veth, "type", "veth", "peer", "name", peer)
	ip(t, "link", "set", peer, "netns", ns.name)
	ip(t, "link", "set", ns.veth, "master", l.bridge, "up")
	ip(t, "-n", ns.name, "addr", "add", ns.addr+"/24", "dev", peer)
	ip(t, "-n", ns.name, "link", "set", peer, "up")
	ip(t, "-n", ns.name, "link", "set", "lo", "up")
	return ns
}

// del deletes the namespace; its veth pair goes with it. Idempotent.
func (ns *netns) del() {
	_ = exec.Command("ip", "netns", "del", ns.name).Run()
	_ = exec.Command("ip", "link", "del", ns.veth).Run()
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func ipOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
